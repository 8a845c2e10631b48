"""Enqueueing each kind of work under its deterministic id (gateway, workers, reconciler)."""

from __future__ import annotations

from arq import ArqRedis

from shared.jobs import (
    CALLBACK_TASK,
    MERGE_TASK,
    SPLIT_QUEUE,
    SPLIT_TASK,
    TRANSCRIBE_QUEUE,
    TRANSCRIBE_TASK,
    CallbackPayload,
    MergePayload,
    SplitPayload,
    TranscribePayload,
    callback_job_id,
    merge_job_id,
    split_job_id,
    transcribe_job_id,
)
from shared.queue import enqueue


async def split(queue: ArqRedis, job_id: str, attempts: int, request_id: str | None) -> bool:
    payload = SplitPayload(job_id=job_id, request_id=request_id)
    return await enqueue(queue, SPLIT_TASK, SPLIT_QUEUE, split_job_id(job_id, attempts), payload)


async def transcribe(
    queue: ArqRedis, job_id: str, index: int, attempts: int, request_id: str | None
) -> bool:
    payload = TranscribePayload(job_id=job_id, index=index, request_id=request_id)
    arq_id = transcribe_job_id(job_id, index, attempts)
    return await enqueue(queue, TRANSCRIBE_TASK, TRANSCRIBE_QUEUE, arq_id, payload)


async def merge(queue: ArqRedis, job_id: str, request_id: str | None) -> bool:
    payload = MergePayload(job_id=job_id, request_id=request_id)
    return await enqueue(queue, MERGE_TASK, TRANSCRIBE_QUEUE, merge_job_id(job_id), payload)


async def callback(queue: ArqRedis, job_id: str, attempt: int, on: str, defer_s: float = 0) -> bool:
    payload = CallbackPayload(job_id=job_id, attempt=attempt, queue=on)
    arq_id = callback_job_id(job_id, attempt)
    return await enqueue(queue, CALLBACK_TASK, on, arq_id, payload, defer_s=defer_s or None)
