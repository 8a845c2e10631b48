"""From table rows to the API's shapes: progress, ETA, links."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.gateway.auth import Caller, media_token
from services.gateway.problems import ServerFault
from services.gateway.schemas import (
    CallbackOut,
    DeliveryOut,
    JobLinks,
    JobOut,
    MediaFacts,
    Progress,
)
from shared.models import (
    CallbackDelivery,
    Chunk,
    ChunkStatus,
    Job,
    JobStatus,
    SpeakerRoute,
    Transcript,
    aware,
    utcnow,
)
from shared.transcript import Segment, TranscriptDoc


@dataclass(frozen=True)
class Done:
    chunks: int = 0
    seconds: float = 0.0


async def done_by_job(session: AsyncSession, job_ids: list[str]) -> dict[str, Done]:
    """Chunks done and audio seconds done for several jobs in one query."""
    if not job_ids:
        return {}
    statement = (
        select(Chunk.job_id, func.count(), func.sum(Chunk.end_s - Chunk.start_s))
        .where(col(Chunk.job_id).in_(job_ids))
        .where(Chunk.status == ChunkStatus.done.value)
        .group_by(col(Chunk.job_id))
    )
    rows = await session.exec(statement)
    return {job_id: Done(int(n), float(s or 0.0)) for job_id, n, s in rows}


async def deliveries_by_job(
    session: AsyncSession, jobs: Iterable[Job]
) -> dict[str, list[CallbackDelivery]]:
    """Every callback attempt of these jobs, oldest first, in one query; none at all for
    jobs without a callback (the common case, so a status read costs one query less)."""
    job_ids = [job.id for job in jobs if job.callback_url]
    if not job_ids:
        return {}
    rows = await session.exec(
        select(CallbackDelivery)
        .where(col(CallbackDelivery.job_id).in_(job_ids))
        .order_by(col(CallbackDelivery.job_id), col(CallbackDelivery.attempt))
    )
    found: dict[str, list[CallbackDelivery]] = {}
    for row in rows:
        found.setdefault(row.job_id, []).append(row)
    return found


def callback_out(job: Job, deliveries: list[CallbackDelivery]) -> CallbackOut | None:
    if not job.callback_url:
        return None
    return CallbackOut(
        url=job.callback_url,
        status=job.callback_status,
        attempts=job.callback_attempts,
        next_attempt_at=aware(job.callback_next_at) if job.callback_next_at else None,
        deliveries=[
            DeliveryOut(
                attempt=d.attempt,
                at=aware(d.at),
                status_code=d.status_code,
                error=d.error,
                duration_ms=d.duration_ms,
            )
            for d in deliveries
        ],
    )


def media_link(request: Request, job: Job, caller: Caller) -> str:
    """The media URL; with keys on, signed for this job and key so a <video> can play it
    (until the token expires or the key is revoked)."""
    path = str(request.url_for("get_job_media", job_id=job.id).path)
    if caller.key_id is None:
        return path
    secret: bytes = request.app.state.media_secret
    ttl = request.app.state.settings.media_token_s
    return f"{path}?token={media_token(secret, job.id, caller.key_id, ttl)}"


def progress(job: Job, done: Done) -> Progress:
    total_s = _audio_total_s(job)
    if job.status == JobStatus.completed:
        percent = 100.0
    elif total_s:
        percent = min(99.9, 100.0 * done.seconds / total_s)
    else:
        percent = 0.0
    return Progress(
        chunks_done=done.chunks,
        chunks_total=job.chunks_total,
        audio_seconds_done=round(done.seconds, 3),
        audio_seconds_total=total_s,
        percent=round(percent, 1),
        eta_seconds=_eta(job, done),
    )


def _audio_total_s(job: Job) -> float | None:
    """The audio the chunks add up to: a file cut channel by channel is transcribed twice."""
    if job.duration_s is None:
        return None
    return job.duration_s * (2 if job.speaker_route == SpeakerRoute.channels else 1)


def _eta(job: Job, done: Done) -> float | None:
    """Remaining audio at the pace seen since work began; unknown before the first chunk."""
    total_s = _audio_total_s(job)
    if JobStatus(job.status).finished or not job.started_at or not total_s:
        return None
    if done.seconds <= 0:
        return None
    elapsed = (utcnow() - aware(job.started_at)).total_seconds()
    remaining = max(total_s - done.seconds, 0.0)
    return round(elapsed * remaining / done.seconds, 1)


def job_out(
    request: Request,
    job: Job,
    done: Done,
    caller: Caller | None = None,
    deliveries: list[CallbackDelivery] | None = None,
) -> JobOut:
    return JobOut(
        id=job.id,
        status=job.status,
        error=job.error,
        filename=job.filename,
        language=job.language,
        model=job.model,
        task=job.task,
        vad=job.vad,
        hotwords=job.hotwords,
        speakers=job.speakers or "off",
        min_speakers=job.min_speakers,
        max_speakers=job.max_speakers,
        speaker_route=job.speaker_route,
        speaker_names=dict(job.speaker_names or {}),
        source_url=job.source_url,
        callback=callback_out(job, deliveries or []),
        chunk_seconds=job.chunk_seconds,
        size_bytes=job.size_bytes,
        progress=progress(job, done),
        media=MediaFacts(
            format=job.format_name,
            duration_seconds=job.duration_s,
            audio_codec=job.audio_codec,
            video_codec=job.video_codec,
            has_video=job.has_video,
        ),
        created_at=aware(job.created_at),
        started_at=aware(job.started_at) if job.started_at else None,
        finished_at=aware(job.finished_at) if job.finished_at else None,
        updated_at=aware(job.updated_at),
        links=JobLinks(
            self=str(request.url_for("get_job", job_id=job.id).path),
            transcript=str(request.url_for("get_transcript", job_id=job.id).path),
            media=media_link(request, job, caller or Caller()),
            events=str(request.url_for("job_events", job_id=job.id).path),
        ),
    )


def transcript_doc(transcript: Transcript) -> TranscriptDoc:
    """The stored transcript as the renderers take it (jobs and OpenAI routes alike)."""
    try:
        segments = [Segment.model_validate(s) for s in transcript.segments]
    except ValidationError as exc:  # rows are written by the merge; never seen
        raise ServerFault("The stored transcript of this job cannot be read.") from exc
    return TranscriptDoc(
        language=transcript.language,
        language_probability=transcript.language_probability,
        duration=transcript.duration_s,
        segments=segments,
    )
