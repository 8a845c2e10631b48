"""Enqueueing each kind of work under its deterministic id (gateway, workers, reconciler)."""

from __future__ import annotations

from arq import ArqRedis

from shared.pipeline.contracts import (
    CALLBACK_QUEUE,
    CALLBACK_TASK,
    DIARIZE_TASK,
    MERGE_TASK,
    SPEAKERS_QUEUE,
    SPLIT_QUEUE,
    SPLIT_TASK,
    TRANSCRIBE_QUEUE,
    TRANSCRIBE_TASK,
    CallbackPayload,
    DiarizePayload,
    MergePayload,
    SplitPayload,
    TranscribePayload,
    callback_job_id,
    diarize_job_id,
    merge_job_id,
    split_job_id,
    transcribe_job_id,
)
from shared.pipeline.fairness import FIRST_MS, Share, fair_score
from shared.queue import enqueue


async def split(
    queue: ArqRedis,
    job_id: str,
    attempts: int,
    request_id: str | None,
    owner: str | None = None,
) -> bool:
    """Splits take turns by owner (the job's key), one split each."""
    payload = SplitPayload(job_id=job_id, request_id=request_id)
    arq_id = split_job_id(job_id, attempts)
    score = await fair_score(queue, SPLIT_QUEUE, arq_id, Share(owner, 1.0))
    if score is None:
        return False
    return await enqueue(queue, SPLIT_TASK, SPLIT_QUEUE, arq_id, payload, score_ms=score)


async def transcribe(
    queue: ArqRedis,
    job_id: str,
    index: int,
    attempts: int,
    request_id: str | None,
    owner: str | None = None,
    seconds: float = 1.0,
) -> bool:
    """Chunks take turns by owner (the job's key), each costing its `seconds` of audio."""
    payload = TranscribePayload(job_id=job_id, index=index, request_id=request_id)
    arq_id = transcribe_job_id(job_id, index, attempts)
    score = await fair_score(queue, TRANSCRIBE_QUEUE, arq_id, Share(owner, seconds))
    if score is None:
        return False
    return await enqueue(queue, TRANSCRIBE_TASK, TRANSCRIBE_QUEUE, arq_id, payload, score_ms=score)


async def diarize(queue: ArqRedis, job_id: str, attempts: int, request_id: str | None) -> bool:
    """One diarization per job, on the speakers service's own queue, in arrival order."""
    payload = DiarizePayload(job_id=job_id, request_id=request_id)
    arq_id = diarize_job_id(job_id, attempts)
    return await enqueue(queue, DIARIZE_TASK, SPEAKERS_QUEUE, arq_id, payload)


async def merge(queue: ArqRedis, job_id: str, request_id: str | None) -> bool:
    """A merge completes a job and is short: it goes ahead of every chunk."""
    payload = MergePayload(job_id=job_id, request_id=request_id)
    arq_id = merge_job_id(job_id)
    return await enqueue(queue, MERGE_TASK, TRANSCRIBE_QUEUE, arq_id, payload, score_ms=FIRST_MS)


async def callback(queue: ArqRedis, job_id: str, attempt: int, defer_s: float = 0) -> bool:
    """Deliveries have their own queue: a receiver never holds a slot that transcribes."""
    payload = CallbackPayload(job_id=job_id, attempt=attempt, queue=CALLBACK_QUEUE)
    arq_id = callback_job_id(job_id, attempt)
    return await enqueue(
        queue, CALLBACK_TASK, CALLBACK_QUEUE, arq_id, payload, defer_s=defer_s or None
    )
