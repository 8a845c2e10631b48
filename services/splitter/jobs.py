"""The split task: decode once, cut at quiet points, hand each chunk on as soon as it exists.

Transcribers start on the first chunk while the rest of the file is still being
decoded. Running the task twice gives the same chunks (the cut points depend only
on the audio) and re-enqueues only those not yet done.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import structlog

from services.splitter.chunking import SAMPLE_RATE, Samples, split
from services.splitter.decode import check_duration, decode_pcm
from shared import transitions
from shared.jobs import (
    MERGE_TASK,
    TRANSCRIBE_QUEUE,
    TRANSCRIBE_TASK,
    MergePayload,
    SplitPayload,
    TranscribePayload,
    merge_job_id,
    transcribe_job_id,
)
from shared.media import MediaError
from shared.metrics import STAGE_SECONDS
from shared.models import Chunk, ChunkStatus, Job, JobStatus, utcnow
from shared.queue import enqueue
from shared.runtime import Resources
from shared.store import chunk_key

log = structlog.get_logger(__name__)


async def split_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = SplitPayload.model_validate(payload)
    res: Resources = ctx["resources"]
    structlog.contextvars.bind_contextvars(job_id=task.job_id, request_id=task.request_id)
    try:
        return await _split(res, task)
    finally:
        structlog.contextvars.unbind_contextvars("job_id", "request_id")


async def _split(res: Resources, task: SplitPayload) -> str:
    async with res.sessions() as session:
        job = await session.get(Job, task.job_id)
        if job is None or JobStatus(job.status).finished:
            return "dropped"
        moved = await transitions.move(
            session,
            job.id,
            JobStatus.splitting,
            from_=[JobStatus.queued, JobStatus.splitting],
            started_at=job.started_at or utcnow(),
        )
        await session.commit()
        if not moved:  # already past splitting: a duplicate delivery
            return "dropped"
    began = time.perf_counter()
    try:
        count = await _cut_and_enqueue(res, job, task)
    except MediaError as exc:
        async with res.sessions() as session:
            await transitions.fail(session, job.id, str(exc))
            await session.commit()
        log.info("split.failed", reason=str(exc))
        return "failed"
    STAGE_SECONDS.labels("split").observe(time.perf_counter() - began)
    async with res.sessions() as session:
        if count == 0:
            await transitions.fail(session, job.id, "The audio track holds no samples.")
            await session.commit()
            return "failed"
        await transitions.move(
            session,
            job.id,
            JobStatus.transcribing,
            from_=[JobStatus.splitting],
            chunks_total=count,
        )
        await session.commit()
    # Every chunk may already be done; the transcriber merges whichever way it learns first.
    await enqueue(
        res.queue,
        MERGE_TASK,
        TRANSCRIBE_QUEUE,
        merge_job_id(job.id),
        MergePayload(job_id=job.id, request_id=task.request_id),
    )
    log.info("split.done", chunks=count, seconds=round(time.perf_counter() - began, 3))
    return "split"


async def _cut_and_enqueue(res: Resources, job: Job, task: SplitPayload) -> int:
    max_s = res.settings.max_duration_s
    check_duration(job.duration_s, max_s)
    async with res.store.local_file(job.media_key) as path:
        chunks: Iterator[tuple[int, Samples]] = split(decode_pcm(path, max_s), job.chunk_seconds)
        index = 0
        while (item := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
            start, samples = item
            await _store_chunk(res, job, index, start, samples, task.request_id)
            index += 1
        return index


async def _store_chunk(
    res: Resources, job: Job, index: int, start: int, samples: Samples, request_id: str | None
) -> None:
    key = chunk_key(job.id, index)
    async with res.sessions() as session:
        existing = await session.get(Chunk, (job.id, index))
        if existing is not None and existing.status == ChunkStatus.done:
            return
        await res.store.put_bytes(key, samples.tobytes())
        if existing is None:
            session.add(
                Chunk(
                    job_id=job.id,
                    index=index,
                    start_s=start / SAMPLE_RATE,
                    end_s=(start + len(samples)) / SAMPLE_RATE,
                    key=key,
                )
            )
            await session.commit()
    await enqueue(
        res.queue,
        TRANSCRIBE_TASK,
        TRANSCRIBE_QUEUE,
        transcribe_job_id(job.id, index),
        TranscribePayload(job_id=job.id, index=index, request_id=request_id),
    )
