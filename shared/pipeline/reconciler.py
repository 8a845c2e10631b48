"""The database is the source of truth: re-enqueue whatever it says is unfinished and
nobody is working on. Runs in every worker process; arq's deterministic job ids
make concurrent reconcilers harmless."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy import func
from sqlmodel import col, select

from shared.models import CallbackStatus, Chunk, ChunkStatus, Diarization, Job, JobStatus, utcnow
from shared.pipeline import dispatch, retention, webhooks
from shared.pipeline.contracts import (
    SPEAKERS_QUEUE,
    SPLIT_QUEUE,
    TRANSCRIBE_QUEUE,
    diarize_job_id,
    merge_job_id,
    split_job_id,
    transcribe_job_id,
)
from shared.pipeline.leases import unleased
from shared.queue import release_abandoned
from shared.runtime import Resources

log = structlog.get_logger(__name__)

SPLITTABLE = [JobStatus.queued.value, JobStatus.splitting.value]
TRANSCRIBABLE = [JobStatus.splitting.value, JobStatus.transcribing.value]


@dataclass(frozen=True)
class Reconciled:
    splits: int = 0
    chunks: int = 0
    diarizations: int = 0
    merges: int = 0
    callbacks: int = 0


async def reconcile_once(res: Resources) -> Reconciled:
    async with res.sessions() as session:
        splits = list(
            await session.exec(
                select(Job.id, Job.split_attempts, Job.request_id, Job.owner_id)
                .where(col(Job.status).in_(SPLITTABLE))
                .where(unleased(Job))
            )
        )
        chunks = list(
            await session.exec(
                select(Chunk, Job.request_id, Job.owner_id)
                .join(Job, col(Job.id) == col(Chunk.job_id))
                .where(col(Job.status).in_(TRANSCRIBABLE))
                .where(col(Chunk.status) == ChunkStatus.pending.value)
                .where(unleased(Chunk))
            )
        )
        diarizations = list(
            await session.exec(
                select(Diarization.job_id, Diarization.attempts, Job.request_id)
                .join(Job, col(Job.id) == col(Diarization.job_id))
                .where(col(Job.status) == JobStatus.transcribing.value)
                .where(col(Diarization.status) == ChunkStatus.pending.value)
                .where(unleased(Diarization))
            )
        )
        pending = (
            select(func.count())
            .where(col(Chunk.job_id) == col(Job.id))
            .where(col(Chunk.status) == ChunkStatus.pending.value)
            .scalar_subquery()
        )
        listening = (
            select(func.count())
            .where(col(Diarization.job_id) == col(Job.id))
            .where(col(Diarization.status) == ChunkStatus.pending.value)
            .scalar_subquery()
        )
        merges = list(
            await session.exec(
                select(Job.id, Job.request_id)
                .where(col(Job.status) == JobStatus.transcribing.value)
                .where(pending == 0)
                .where(listening == 0)
            )
        )
        # Due callbacks (not held by a delivery in flight, see shared.pipeline.webhooks) go back
        # on the callback queue, which the gateway serves.
        callbacks = list(
            await session.exec(
                select(Job.id, Job.callback_attempts)
                .where(col(Job.callback_status) == CallbackStatus.pending.value)
                .where(col(Job.callback_next_at) <= utcnow())
            )
        )
        # Ended jobs whose callback never started (the worker died in between).
        unstarted = list(
            await session.exec(
                select(Job.id)
                .where(col(Job.status).in_([JobStatus.completed.value, JobStatus.failed.value]))
                .where(col(Job.callback_url).is_not(None))
                .where(col(Job.callback_status).is_(None))
            )
        )
    for job_id in unstarted:
        await webhooks.job_ended(res, job_id)
    abandoned = [
        *((SPLIT_QUEUE, split_job_id(j, n)) for j, n, _, _ in splits),
        *(
            (TRANSCRIBE_QUEUE, transcribe_job_id(c.job_id, c.index, c.attempts))
            for c, _, _ in chunks
        ),
        *((SPEAKERS_QUEUE, diarize_job_id(j, n)) for j, n, _ in diarizations),
        *((TRANSCRIBE_QUEUE, merge_job_id(j)) for j, _ in merges),
    ]
    for queue, arq_id in abandoned:
        await release_abandoned(res.queue, queue, arq_id, *_abandon_after(res, queue))
    counts = Reconciled(
        splits=sum([await dispatch.split(res.queue, j, n, r, o) for j, n, r, o in splits]),
        chunks=sum(
            [
                await dispatch.transcribe(
                    res.queue, c.job_id, c.index, c.attempts, r, owner, c.end_s - c.start_s
                )
                for c, r, owner in chunks
            ]
        ),
        diarizations=sum([await dispatch.diarize(res.queue, j, n, r) for j, n, r in diarizations]),
        merges=sum([await dispatch.merge(res.queue, j, r) for j, r in merges]),
        callbacks=sum([await dispatch.callback(res.queue, j, n) for j, n in callbacks]),
    )
    if counts != Reconciled():
        log.info(
            "reconciler.enqueued",
            splits=counts.splits,
            chunks=counts.chunks,
            diarizations=counts.diarizations,
            merges=counts.merges,
            callbacks=counts.callbacks,
        )
    return counts


def _abandon_after(res: Resources, queue: str) -> tuple[float, float]:
    """arq's in-progress mark of the queue's workers (their job timeout + 10 s: the
    speakers service's own, `speakers_timeout_s`, the others `job_timeout_s`), and how
    old it must be, unleased, to be a dead worker's: longer than a live worker takes
    from taking a job to claiming it, retries of a slow database included."""
    settings = res.settings
    timeout = settings.speakers_timeout_s if queue == SPEAKERS_QUEUE else settings.job_timeout_s
    return timeout + 10, max(3 * settings.lease_s, 90.0)


async def run_forever(res: Resources) -> None:
    """Reconcile and sweep on an interval; a failed round is logged and tried again."""
    interval = res.settings.reconcile_interval_s
    while True:
        try:
            await reconcile_once(res)
            await retention.sweep(res)
        except Exception as exc:
            log.warning("reconciler.round_failed", error=repr(exc))
        await asyncio.sleep(interval)
