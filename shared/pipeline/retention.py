"""What is kept after a job ends: the transcript until deletion, the source media for
`VTX_MEDIA_RETENTION` (so it can be played beside its transcript), or, for a failed
job, `VTX_FAILED_MEDIA_RETENTION` (a failure should not hold a key's storage for a
week), the chunks never."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from shared.config import Settings
from shared.models import Job, JobStatus, utcnow
from shared.pipeline.updates import update_one
from shared.retry import transient
from shared.runtime import Resources
from shared.store import chunk_prefix, media_key

log = structlog.get_logger(__name__)


def kept_for(settings: Settings, status: JobStatus) -> timedelta:
    """How long an ended job's media stays; a failure never longer than a success."""
    if status == JobStatus.failed:
        return min(settings.failed_media_retention, settings.media_retention)
    return settings.media_retention


async def job_ended(res: Resources, job: Job) -> None:
    """Drop the chunks' audio; drop the media too when nothing is to be retained.

    `job` is the row as the caller has just read it. Idempotent, each step retried on
    its own: run it again after any failure."""
    await transient(res.store.delete_prefix)(chunk_prefix(job.id))
    status = JobStatus(job.status)
    if not status.finished or job.media_deleted_at is not None:
        return
    if kept_for(res.settings, status).total_seconds() <= 0:
        await _drop_media(res, job.id)


async def _drop_media(res: Resources, job_id: str) -> bool:
    await transient(res.store.delete)(media_key(job_id))
    statement = (
        update(Job)
        .where(col(Job.id) == job_id)
        .where(col(Job.media_deleted_at).is_(None))
        .values(media_deleted_at=utcnow())
    )
    return await update_one(res.sessions, statement)


async def sweep(res: Resources, batch: int = 100) -> int:
    """Delete the media of jobs that ended longer ago than their retention; returns how many."""
    dropped = 0
    for job_id in await _expired(res, batch):
        await transient(res.store.delete_prefix)(chunk_prefix(job_id))
        dropped += await _drop_media(res, job_id)
    if dropped:
        log.info("retention.media_deleted", jobs=dropped)
    return dropped


@transient
async def _expired(res: Resources, batch: int) -> list[str]:
    now = utcnow()
    expired_after = [
        and_(
            col(Job.status) == status.value,
            col(Job.finished_at) <= now - kept_for(res.settings, status),
        )
        for status in (JobStatus.completed, JobStatus.failed)
    ]
    async with res.sessions() as session:
        rows = await session.exec(
            select(Job.id)
            .where(or_(*expired_after))
            .where(col(Job.media_deleted_at).is_(None))
            .limit(batch)
        )
        return list(rows)
