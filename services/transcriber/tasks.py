"""Chunk transcription and the merge that completes a job.

Both are idempotent: a chunk is claimed under a lease and marked done by a
conditional update, so a second delivery cannot double its words, and the merge
completes a job only once (shared.pipeline.outcomes). A chunk's error is retried (arq
`Retry`) only when `shared.retry` calls it transient; any other fails the job at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from concurrent.futures import Executor
from typing import Any

import numpy as np
import structlog
from arq import Retry
from sqlalchemy import update
from sqlmodel import col, select

from services.transcriber.batching import Gatherer
from services.transcriber.engine import DecodeOptions, Engine, EngineResult, combine
from services.transcriber.windows import Audio, Speech, Window, cut_windows
from shared.metrics import AUDIO_SECONDS, CHUNK_RETRIES, REALTIME_FACTOR, STAGE_SECONDS
from shared.models import Chunk, ChunkStatus, Diarization, Job, JobStatus, Transcript, utcnow
from shared.pipeline import outcomes
from shared.pipeline.chunks import count_done
from shared.pipeline.contracts import MergePayload, TranscribePayload
from shared.pipeline.leases import Lease, claim_chunk
from shared.pipeline.updates import update_one
from shared.retry import is_transient, transient
from shared.runtime import Resources
from shared.speakers import join_speakers
from shared.speech_models import is_multilingual_async
from shared.transcript import ChunkResult, Segment, merge_chunks

log = structlog.get_logger(__name__)


async def transcribe_chunk(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = TranscribePayload.model_validate(payload)
    structlog.contextvars.bind_contextvars(
        job_id=task.job_id, chunk=task.index, request_id=task.request_id
    )
    try:
        return await _transcribe(ctx, task)
    finally:
        structlog.contextvars.unbind_contextvars("job_id", "chunk", "request_id")


async def merge_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = MergePayload.model_validate(payload)
    return "merged" if await try_merge(ctx["resources"], task.job_id) else "not-ready"


async def _transcribe(ctx: dict[str, Any], task: TranscribePayload) -> str:
    res: Resources = ctx["resources"]
    job, chunk = await _load(res, task)
    if job is None or chunk is None:
        return "dropped"
    if JobStatus(job.status).finished:  # finish what its end left undone, if anything
        await outcomes.settle(res, job.id, JobStatus(job.status))
        return "dropped"
    if chunk.status == ChunkStatus.done:
        await try_merge(res, job.id)
        return "already-done"
    model = job.model or res.settings.model
    if job.task == "translate" and not await is_multilingual_async(model, res.settings.model_dir):
        await outcomes.fail_job(res, job.id, "The model knows only English: it cannot translate.")
        return "failed"
    lease = await claim_chunk(
        res.sessions, job.id, chunk.index, ctx["worker_id"], res.settings.lease_s
    )
    if lease is None:  # done meanwhile, or a live worker holds it
        return "held-elsewhere"
    attempts = chunk.attempts + 1
    if attempts > 1:
        CHUNK_RETRIES.inc()
    if await outcomes.gave_up(res, job.id, lease, attempts, f"Chunk {chunk.index}", "its worker"):
        return "failed"
    async with lease.heartbeat(res.settings.lease_s):
        outcome = await _work(ctx, res, job, chunk, lease, attempts)
    if outcome == "done":
        await _merge_or_retry(res, job.id, attempts)
    return outcome


async def _merge_or_retry(res: Resources, job_id: str, attempts: int) -> None:
    """Merge after the chunk is stored; on a transient error, let arq deliver it again.

    The chunk is done by then, so the redelivery only merges, or finishes the clean-up
    and callback of a merge that committed before the error."""
    try:
        await try_merge(res, job_id)
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning("merge.retrying", error=repr(exc))
        raise Retry(defer=outcomes.backoff_s(attempts)) from exc


async def _work(
    ctx: dict[str, Any], res: Resources, job: Job, chunk: Chunk, lease: Lease, attempts: int
) -> str:
    try:
        result, seconds = await _run_engine(ctx, res, chunk, decode_options(job))
    except Exception as exc:
        await _on_error(res, job.id, chunk.index, attempts, exc)
        return "failed"
    if lease.lost.is_set():  # deleted or taken over while the model ran
        return "dropped"
    if await _complete_chunk(res, chunk, result):
        lease.ended()
        duration = chunk.end_s - chunk.start_s
        AUDIO_SECONDS.inc(duration)
        STAGE_SECONDS.labels("transcribe").observe(seconds)
        REALTIME_FACTOR.observe(duration / max(seconds, 1e-6))
        log.info("chunk.done", seconds=round(seconds, 3), audio_seconds=round(duration, 2))
    return "done"


@transient
async def _load(res: Resources, task: TranscribePayload) -> tuple[Job | None, Chunk | None]:
    async with res.sessions() as session:
        job = await session.get(Job, task.job_id)
        chunk = await session.get(Chunk, (task.job_id, task.index))
    return job, chunk


def decode_options(job: Job) -> DecodeOptions:
    return DecodeOptions(
        language=job.language,
        model=job.model,
        task=job.task,
        prompt=job.prompt,
        hotwords=job.hotwords,
        temperature=job.temperature,
    )


async def _run_engine(
    ctx: dict[str, Any], res: Resources, chunk: Chunk, options: DecodeOptions
) -> tuple[EngineResult, float]:
    """Decode the chunk: sequentially without VAD, else its speech windows, batched with
    whatever else this process holds."""
    executor: Executor = ctx["executor"]
    pcm = await transient(res.store.get_bytes)(chunk.key)
    began = time.perf_counter()
    loop = asyncio.get_running_loop()
    if chunk.speech is None:
        result = await loop.run_in_executor(executor, _transcribe_pcm, ctx["engine"], pcm, options)
    else:
        result = await _decode_speech(ctx, pcm, chunk.speech, options)
    return result, time.perf_counter() - began


def _transcribe_pcm(engine: Engine, pcm: bytes, options: DecodeOptions) -> EngineResult:
    """On the executor: the conversion of a whole chunk to float samples is CPU work
    (tens of MB for a long chunk) that would stall the worker's loop."""
    return engine.transcribe(_samples(pcm), options)


def _samples(pcm: bytes) -> Audio:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


async def _decode_speech(
    ctx: dict[str, Any], pcm: bytes, speech: Speech, options: DecodeOptions
) -> EngineResult:
    """No speech, no model call. Without a gatherer in ctx (a bare worker, tests), the
    chunk's windows make one batch of their own."""
    if not speech:
        return combine([], [], options.language)
    windows = await asyncio.to_thread(_windows, pcm, speech)
    gatherer: Gatherer | None = ctx.get("gatherer")
    if gatherer is not None:
        results = await gatherer.decode(windows, options)
    else:
        engine: Engine = ctx["engine"]
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(
            ctx["executor"], engine.decode_windows, windows, options
        )
    return combine(windows, results, options.language)


def _windows(pcm: bytes, speech: Speech) -> list[Window]:
    return cut_windows(_samples(pcm), speech)


async def _on_error(res: Resources, job_id: str, index: int, attempts: int, exc: Exception) -> None:
    log.warning("chunk.error", error=repr(exc), attempt=attempts, transient=is_transient(exc))
    failure = f"Chunk {index} could not be transcribed"
    await outcomes.retry_or_fail(res, job_id, attempts, exc, failure)


def _offset(result: EngineResult, chunk: Chunk) -> list[dict[str, Any]]:
    """Chunk-relative times to whole-file times, clamped to the chunk's own span."""
    span = ChunkResult(start=0.0, end=chunk.end_s - chunk.start_s, segments=result.segments)
    shifted = []
    for seg in merge_chunks([span]):
        seg_dict = seg.model_dump()
        seg_dict["start"] += chunk.start_s
        seg_dict["end"] += chunk.start_s
        for word in seg_dict["words"]:
            word["start"] += chunk.start_s
            word["end"] += chunk.start_s
        shifted.append(seg_dict)
    return shifted


async def _complete_chunk(res: Resources, chunk: Chunk, result: EngineResult) -> bool:
    """Store the chunk's segments once: only the pending -> done update may write them."""
    statement = (
        update(Chunk)
        .where(col(Chunk.job_id) == chunk.job_id)
        .where(col(Chunk.index) == chunk.index)
        .where(col(Chunk.status) == ChunkStatus.pending.value)
        .values(
            status=ChunkStatus.done.value,
            segments=_offset(result, chunk),
            language=result.language,
            language_probability=result.language_probability,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=utcnow(),
        )
    )
    return await update_one(res.sessions, statement)


async def try_merge(res: Resources, job_id: str) -> bool:
    """Complete the job if its split is over and every chunk is done; True if this call did.

    A job found completed already gets what follows its end once more (idempotent), so
    a merge delivered again finishes one whose clean-up broke."""
    began = time.perf_counter()
    merged = await _merge(res, job_id)
    if not isinstance(merged, tuple):
        if merged == JobStatus.completed:
            await outcomes.settle(res, job_id, merged)
        return False
    job, transcript = merged
    merge_s = time.perf_counter() - began
    if not await outcomes.complete_job(res, job, transcript, merge_s):
        return False  # another worker's merge won
    log.info("job.completed", chunks=job.chunks_total)
    return True


@transient
async def _merge(res: Resources, job_id: str) -> tuple[Job, Transcript] | JobStatus | None:
    """The job and its merged transcript; if it cannot be merged now, its status (None:
    deleted)."""
    async with res.sessions() as session:
        job = await session.get(Job, job_id)
        if job is None:
            return None
        status = JobStatus(job.status)
        if status != JobStatus.transcribing or job.chunks_total is None:
            return status
        if await count_done(session, job_id) < job.chunks_total:
            return status
        diarization = await session.get(Diarization, job_id)
        if diarization is not None and diarization.status != ChunkStatus.done:
            return status  # the speakers service merges when it is done
        chunks = list(
            await session.exec(
                select(Chunk).where(col(Chunk.job_id) == job_id).order_by(col(Chunk.index))
            )
        )
    turns = diarization.turns if diarization is not None else None
    # Validating and merging every segment of a long job is CPU work: not on the loop.
    return job, await asyncio.to_thread(_transcript, job, chunks, turns)


def _transcript(job: Job, chunks: list[Chunk], turns: list[dict[str, Any]] | None) -> Transcript:
    """The job's transcript: chunks merged, with speakers by channel or by the turns the
    speakers service found (shared.speakers), where the job asked for them."""
    results = [
        ChunkResult(
            start=c.start_s,
            end=c.end_s,
            segments=[Segment.model_validate(s) for s in c.segments or []],
            channel=c.channel,
        )
        for c in chunks
    ]
    language, probability = _language(job, chunks)
    segments = join_speakers(results, job.speaker_route, turns)
    return Transcript(
        job_id=job.id,
        language=language,
        language_probability=probability,
        duration_s=max((c.end_s for c in chunks), default=0.0),
        segments=[s.model_dump() for s in segments],
    )


def _language(job: Job, chunks: list[Chunk]) -> tuple[str | None, float | None]:
    """The language asked for, else the one detected over the most audio."""
    if job.language:
        return job.language, None
    weight: dict[str, float] = defaultdict(float)
    confidence: dict[str, float] = defaultdict(float)
    for c in chunks:
        if c.language:
            span = c.end_s - c.start_s
            weight[c.language] += span
            confidence[c.language] += span * (c.language_probability or 0.0)
    if not weight:
        return None, None
    best = max(weight, key=lambda lang: weight[lang])
    return best, round(confidence[best] / weight[best], 4)
