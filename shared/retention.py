"""What is kept after a job ends: the transcript until deletion, the source media for
`VTX_MEDIA_RETENTION` (so it can be played beside its transcript), the chunks never."""

from __future__ import annotations

from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, update
from sqlmodel import col, select

from shared.models import Job, JobStatus, utcnow
from shared.retry import transient
from shared.runtime import Resources
from shared.store import chunk_prefix, media_key

log = structlog.get_logger(__name__)


@transient
async def job_ended(res: Resources, job_id: str) -> None:
    """Drop the chunks' audio; drop the media too when nothing is to be retained."""
    await res.store.delete_prefix(chunk_prefix(job_id))
    if res.settings.media_retention.total_seconds() <= 0:
        await _drop_media(res, job_id)


async def _drop_media(res: Resources, job_id: str) -> bool:
    await res.store.delete(media_key(job_id))
    async with res.sessions() as session:
        statement = (
            update(Job)
            .where(col(Job.id) == job_id)
            .where(col(Job.media_deleted_at).is_(None))
            .values(media_deleted_at=utcnow())
        )
        result = cast(CursorResult[Any], await session.exec(statement))
        await session.commit()
        return result.rowcount == 1


@transient
async def sweep(res: Resources, batch: int = 100) -> int:
    """Delete the media of jobs that ended longer ago than the retention; returns how many."""
    cutoff = utcnow() - res.settings.media_retention
    async with res.sessions() as session:
        rows = await session.exec(
            select(Job.id)
            .where(col(Job.status).in_([JobStatus.completed.value, JobStatus.failed.value]))
            .where(col(Job.media_deleted_at).is_(None))
            .where(col(Job.finished_at) <= cutoff)
            .limit(batch)
        )
        expired = list(rows)
    dropped = 0
    for job_id in expired:
        await res.store.delete_prefix(chunk_prefix(job_id))
        dropped += await _drop_media(res, job_id)
    if dropped:
        log.info("retention.media_deleted", jobs=dropped)
    return dropped
