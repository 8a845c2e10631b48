"""The diarize task: who speaks when over a job's whole audio, then the merge.

The splitter queues one diarization per job that asked for speakers over one mix,
once its chunks are all stored. This task claims it under a lease (like a chunk),
feeds the job's chunks to the diarizer in index order, one at a time, on the
executor (the whole file is never held here), stores the turns with a conditional
update (only pending -> done, so a second delivery changes nothing) and queues the
merge, which completes the job once its chunks are done too. A transient error is
retried (arq `Retry`) while tries remain; any other fails the job with its reason.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from sqlalchemy import update
from sqlmodel import col, select

from services.speakers.turns import Audio, Diarizer
from shared.metrics import STAGE_SECONDS
from shared.models import Chunk, ChunkStatus, Diarization, Job, JobStatus, utcnow
from shared.pipeline import dispatch, outcomes
from shared.pipeline.contracts import DiarizePayload
from shared.pipeline.leases import Lease, claim_diarization
from shared.pipeline.updates import update_one
from shared.retry import is_transient, transient
from shared.runtime import Resources
from shared.speaker_count import AUTO, SpeakerCount
from shared.speakers import Turn
from shared.store import Store

log = structlog.get_logger(__name__)

SAMPLE_RATE = 16_000
# Longest the feed waits for one chunk from the store (its reads retry for up to ~60 s).
FETCH_TIMEOUT_S = 300.0


class Abandoned(Exception):
    """The job was deleted, its diarization taken over, or the task cancelled meanwhile."""


async def diarize_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = DiarizePayload.model_validate(payload)
    structlog.contextvars.bind_contextvars(job_id=task.job_id, request_id=task.request_id)
    try:
        return await _diarize(ctx, task)
    finally:
        structlog.contextvars.unbind_contextvars("job_id", "request_id")


async def _diarize(ctx: dict[str, Any], task: DiarizePayload) -> str:
    res: Resources = ctx["resources"]
    job, row = await _load(res, task.job_id)
    if job is None or row is None or JobStatus(job.status).finished:
        return "dropped"  # deleted, or ended (failed by a chunk, say): nothing to add
    if row.status == ChunkStatus.done:
        await _merge(res, job.id, task.request_id)  # a delivery whose merge was lost
        return "already-done"
    lease = await claim_diarization(res.sessions, job.id, ctx["worker_id"], res.settings.lease_s)
    if lease is None:  # done meanwhile, or a live worker holds it
        return "held-elsewhere"
    attempts = row.attempts + 1
    work, holder = "Telling the speakers apart", "the speakers service"
    if await outcomes.gave_up(res, job.id, lease, attempts, work, holder):
        return "failed"
    async with lease.heartbeat(res.settings.lease_s):
        outcome = await _work(ctx, res, job, lease, attempts)
    if outcome == "done":
        await _merge(res, job.id, task.request_id)
    return outcome


async def _work(ctx: dict[str, Any], res: Resources, job: Job, lease: Lease, attempts: int) -> str:
    began = time.perf_counter()
    try:
        turns = await _run_diarizer(ctx, res, job, lease)
    except Abandoned:
        log.info("diarization.abandoned")
        return "dropped"
    except Exception as exc:
        await _on_error(res, job.id, attempts, exc)
        return "failed"
    seconds = time.perf_counter() - began
    if lease.lost.is_set():  # deleted or taken over while the model ran
        return "dropped"
    rows = turn_rows(turns)
    if not await _complete(res, job.id, rows):
        return "dropped"
    lease.ended()
    STAGE_SECONDS.labels("speakers").observe(seconds)
    log.info(
        "diarization.done",
        seconds=round(seconds, 3),
        turns=len(rows),
        speakers=len({r["speaker"] for r in rows}),
    )
    return "done"


@transient
async def _load(res: Resources, job_id: str) -> tuple[Job | None, Diarization | None]:
    async with res.sessions() as session:
        job = await session.get(Job, job_id)
        row = await session.get(Diarization, job_id)
    return job, row


@dataclass(frozen=True)
class Piece:
    """One chunk of the mix, as the feed fetches it."""

    key: str
    start_s: float
    end_s: float


@transient
async def _pieces(res: Resources, job: Job) -> list[Piece]:
    async with res.sessions() as session:
        rows = await session.exec(
            select(Chunk.key, Chunk.start_s, Chunk.end_s)
            .where(col(Chunk.job_id) == job.id)
            .where(col(Chunk.channel).is_(None))
            .order_by(col(Chunk.index))
        )
        return [Piece(key, start, end) for key, start, end in rows]


def check_contiguous(pieces: Sequence[Piece], expected: int | None) -> None:
    """The diarizer counts time in samples from the first piece: the pieces must be the
    whole file, from 0, without gaps, or every turn after a gap would be misplaced."""
    if expected is None or len(pieces) != expected:
        raise ValueError(f"{len(pieces)} of its {expected or '?'} chunks of audio are stored")
    position = 0.0
    for piece in pieces:
        if abs(piece.start_s - position) > 1.5 / SAMPLE_RATE:
            raise ValueError(f"its audio has a gap at {position:.3f} s")
        position = piece.end_s


async def _run_diarizer(ctx: dict[str, Any], res: Resources, job: Job, lease: Lease) -> list[Turn]:
    """Run the diarizer on the executor, fed chunk by chunk from the store.

    Cancellation (shutdown, arq's timeout) or a lost lease stops the feed at its next
    chunk: the thread cannot be interrupted, but it stops taking audio."""
    pieces = await _pieces(res, job)
    check_contiguous(pieces, job.chunks_total)
    diarizer: Diarizer = ctx["diarizer"]
    executor: Executor = ctx["executor"]
    loop = asyncio.get_running_loop()
    halt = threading.Event()
    feed = Feed(res.store, pieces, loop, lambda: halt.is_set() or lease.lost.is_set())
    count = SpeakerCount.parse(
        job.speakers or AUTO, job.min_speakers, job.max_speakers, res.settings.max_speakers
    )
    try:
        return await loop.run_in_executor(executor, _call, diarizer, feed, count)
    finally:
        halt.set()


def _call(diarizer: Diarizer, feed: Feed, count: SpeakerCount) -> list[Turn]:
    return list(diarizer.diarize(feed, count))


class Feed(Iterable[Audio]):
    """The job's audio as float32 pieces, read from the store one chunk at a time.

    Iterated on the executor's thread; each read runs on the event loop (the store is
    async) and waits there, so only the piece the diarizer is taking is in memory here."""

    def __init__(
        self,
        store: Store,
        pieces: Sequence[Piece],
        loop: asyncio.AbstractEventLoop,
        stopped: Callable[[], bool],
    ) -> None:
        self._store = store
        self._pieces = pieces
        self._loop = loop
        self._stopped = stopped

    def __iter__(self) -> Iterator[Audio]:
        for piece in self._pieces:
            if self._stopped():
                raise Abandoned
            read = asyncio.run_coroutine_threadsafe(self._read(piece.key), self._loop)
            try:
                pcm = read.result(FETCH_TIMEOUT_S)
            except TimeoutError:
                read.cancel()
                raise
            yield samples(pcm)

    async def _read(self, key: str) -> bytes:
        return await transient(self._store.get_bytes)(key)


def samples(pcm: bytes) -> Audio:
    """16-bit PCM as float32 in [-1, 1); a byte left over means it is not 16-bit PCM."""
    if len(pcm) % 2:
        raise ValueError("a chunk of audio is not 16-bit samples")
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def turn_rows(turns: Iterable[Turn]) -> list[dict[str, Any]]:
    """Turns as the Diarization row keeps them: in time order, empty ones dropped, and
    labelled S1, S2, ... in order of first appearance, whatever the engine called them."""
    ordered = sorted((t for t in turns if t.end > t.start), key=lambda t: (t.start, t.end))
    labels: dict[str, str] = {}
    rows = []
    for turn in ordered:
        label = labels.setdefault(str(turn.speaker), f"S{len(labels) + 1}")
        rows.append(Turn(turn.start, turn.end, label).as_row())
    return rows


async def _complete(res: Resources, job_id: str, rows: list[dict[str, Any]]) -> bool:
    """Store the turns once: only the pending -> done update may write them."""
    statement = (
        update(Diarization)
        .where(col(Diarization.job_id) == job_id)
        .where(col(Diarization.status) == ChunkStatus.pending.value)
        .values(
            status=ChunkStatus.done.value,
            turns=rows,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=utcnow(),
        )
    )
    return await update_one(res.sessions, statement)


@transient
async def _merge(res: Resources, job_id: str, request_id: str | None) -> None:
    """Queue the merge; it completes the job if its chunks are all done, and otherwise the
    last chunk's worker merges. Lost anyway, the reconciler queues it again."""
    await dispatch.merge(res.queue, job_id, request_id)


async def _on_error(res: Resources, job_id: str, attempts: int, exc: Exception) -> None:
    log.warning("diarization.error", error=repr(exc), attempt=attempts, transient=is_transient(exc))
    failure = "The speakers could not be told apart"
    await outcomes.retry_or_fail(res, job_id, attempts, exc, failure)
