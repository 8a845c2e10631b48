"""The split task: decode once, cut in pauses, hand each chunk on as soon as it exists.

Transcribers start on the first chunk while the rest of the file is still being
decoded. With the job's VAD on, each chunk's row carries its speech windows, found
on the decode thread with the cut. Running the task twice gives the same chunks and
windows (both depend only on the audio) and re-enqueues only those not yet done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.splitter.channels import LISTEN_S, distinct_voices
from services.splitter.chunking import SAMPLE_RATE, AudioChunk, chunks
from services.splitter.decode import channel_count, decode_pcm, stereo_pcm
from services.splitter.speech import Speech, find_speech, with_speech
from shared.media import MediaError, check_duration
from shared.metrics import STAGE_SECONDS
from shared.models import Chunk, ChunkStatus, Diarization, Job, JobStatus, SpeakerRoute
from shared.pipeline import dispatch, transitions
from shared.pipeline.chunks import count_done
from shared.pipeline.contracts import SplitPayload
from shared.pipeline.leases import Lease, claim_split
from shared.pipeline.outcomes import fail_job, gave_up
from shared.retry import transient
from shared.runtime import Resources
from shared.speaker_count import SpeakerCount, SpeakerCountError
from shared.store import chunk_key, chunk_prefix
from shared.threads import thread_pool

log = structlog.get_logger(__name__)


class Abandoned(Exception):
    """The job was deleted or taken over while this worker was splitting it."""


async def split_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = SplitPayload.model_validate(payload)
    structlog.contextvars.bind_contextvars(job_id=task.job_id, request_id=task.request_id)
    try:
        return await _split(ctx["resources"], ctx["worker_id"], task)
    finally:
        structlog.contextvars.unbind_contextvars("job_id", "request_id")


async def _split(res: Resources, owner: str, task: SplitPayload) -> str:
    lease = await claim_split(res.sessions, task.job_id, owner, res.settings.lease_s)
    if lease is None:  # finished, deleted, or held by a live worker
        return "dropped"
    job = await _load(res, task.job_id)
    if job is None:
        return "dropped"
    if await gave_up(res, job.id, lease, job.split_attempts, "Splitting", "the splitter"):
        return "failed"
    began = time.perf_counter()
    async with lease.heartbeat(res.settings.lease_s):
        try:
            count, route = await _cut_and_enqueue(res, job, lease)
        except MediaError as exc:
            await fail_job(res, job.id, str(exc))
            log.info("split.failed", reason=str(exc))
            return "failed"
        except Abandoned:
            await res.store.delete_prefix(chunk_prefix(job.id))
            log.info("split.abandoned")
            return "dropped"
        if count == 0:
            await fail_job(res, job.id, "The audio track holds no samples.")
            return "failed"
        all_done, diarize_attempts = await _finish(res, job, count, route)
    STAGE_SECONDS.labels("split").observe(time.perf_counter() - began)
    if diarize_attempts is not None:
        await dispatch.diarize(res.queue, job.id, diarize_attempts, task.request_id)
    elif all_done:
        await dispatch.merge(res.queue, job.id, task.request_id)
    log.info("split.done", chunks=count, seconds=round(time.perf_counter() - began, 3))
    return "split"


@transient
async def _load(res: Resources, job_id: str) -> Job | None:
    async with res.sessions() as session:
        return await session.get(Job, job_id)


@transient
async def _finish(
    res: Resources, job: Job, count: int, route: SpeakerRoute | None
) -> tuple[bool, int | None]:
    """Record the chunk count (and the diarization the job waits for, if it asked for
    speakers over one mix): True if every chunk was done by then, so only this split can
    merge; and the diarization's attempts, if it is still to run.

    Either the last chunk commits after the count and its transcriber merges, or before
    it and this count sees it: one of the two always knows. A job that waits for a
    diarization is merged by the speakers service when it ends, whichever ends last."""
    async with res.sessions() as session:
        await transitions.move(
            session,
            job.id,
            JobStatus.transcribing,
            from_=[JobStatus.splitting],
            chunks_total=count,
            speaker_route=route,
        )
        diarization = await _diarization(session, job, route)
        await session.commit()
        all_done = await count_done(session, job.id) >= count
    if diarization is None or diarization.status == ChunkStatus.done:
        return all_done, None
    return all_done, diarization.attempts


async def _diarization(
    session: AsyncSession, job: Job, route: SpeakerRoute | None
) -> Diarization | None:
    """The job's diarization row, created pending on its first split."""
    if route != SpeakerRoute.voices:
        return None
    found = await session.get(Diarization, job.id)
    if found is None:
        found = Diarization(job_id=job.id)
        session.add(found)
    return found


async def _cut_and_enqueue(
    res: Resources, job: Job, lease: Lease
) -> tuple[int, SpeakerRoute | None]:
    """Cut the mix, or each channel on its own when each is one speaker; the chunk count
    and the job's speaker route."""
    check_duration(job.duration_s, res.settings.max_duration_s)
    loop = asyncio.get_running_loop()
    index = 0
    # One thread decodes the whole file: its buffers stay in one malloc arena, where a
    # shared pool would spread them over several and memory would creep with length.
    async with (
        thread_pool(1, "decode") as decoder,
        res.store.local_file(job.media_key) as path,
    ):
        route = await loop.run_in_executor(
            decoder, speaker_route, job, path, res.settings.max_speakers
        )
        for channel in (0, 1) if route == SpeakerRoute.channels else (None,):
            described = _described(res, job, path, channel)
            while (item := await loop.run_in_executor(decoder, next, described, None)) is not None:
                if lease.lost.is_set():
                    raise Abandoned
                try:
                    await _store_chunk(res, job, index, *item, channel)
                except IntegrityError as exc:  # the job row is gone: deleted meanwhile
                    raise Abandoned from exc
                index += 1
    return index, route


def _described(
    res: Resources, job: Job, path: Path, channel: int | None
) -> Iterator[tuple[AudioChunk, Speech | None]]:
    """The chunks of the mix (or of one channel) with their speech windows, lazily: each
    `next` decodes, cuts and runs the VAD on the caller's thread."""
    find = find_speech if job.vad else None
    pcm = decode_pcm(path, res.settings.max_duration_s, job.duration_s, channel)
    return with_speech(chunks(pcm, job.chunk_seconds, find))


def speaker_route(job: Job, path: Path, max_speakers: int) -> SpeakerRoute | None:
    """How the job's speakers are told apart: by channel when the file's two channels
    hold different voices and the request allows two speakers, else by voice."""
    if job.speakers is None:
        return None
    if (
        two_allowed(job, max_speakers)
        and channel_count(path) == 2
        and distinct_voices(stereo_pcm(path, LISTEN_S))
    ):
        return SpeakerRoute.channels
    return SpeakerRoute.voices


def two_allowed(job: Job, limit: int) -> bool:
    """Whether the request allows two speakers. A request beyond this server's limit
    (lowered since it was accepted) is not the split's to refuse: the speakers service
    fails it with the reason, and the route is voices."""
    try:
        count = SpeakerCount.of_request(job.speakers, job.min_speakers, job.max_speakers, limit)
    except SpeakerCountError:
        return False
    return count is not None and count.allows(2)


@transient
async def _store_chunk(
    res: Resources,
    job: Job,
    index: int,
    part: AudioChunk,
    speech: Speech | None,
    channel: int | None,
) -> None:
    """Store and queue one chunk; a re-run finds the same chunk and only re-queues it."""
    start, samples = part.start, part.samples
    async with res.sessions() as session:
        chunk = await session.get(Chunk, (job.id, index))
        if chunk is not None and chunk.status == ChunkStatus.done:
            return
        await res.store.put_bytes(chunk_key(job.id, index), samples.tobytes())
        if chunk is None:
            chunk = Chunk(
                job_id=job.id,
                index=index,
                start_s=start / SAMPLE_RATE,
                end_s=(start + len(samples)) / SAMPLE_RATE,
                key=chunk_key(job.id, index),
                channel=channel,
                speech=speech,
            )
            session.add(chunk)
            await session.commit()
    await dispatch.transcribe(
        res.queue,
        job.id,
        index,
        chunk.attempts,
        job.request_id,
        job.owner_id,
        len(samples) / SAMPLE_RATE,
    )
