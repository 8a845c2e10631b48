"""The job state machine as conditional updates.

Each transition names the states it may leave from, so two workers racing on the
same job (arq delivers at least once) cannot both win it: the loser's update
matches no row and it learns so from the row count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import Job, JobStatus, utcnow
from shared.pipeline.updates import updated_one

ACTIVE = (JobStatus.queued, JobStatus.splitting, JobStatus.transcribing)


async def move(
    session: AsyncSession,
    job_id: str,
    to: JobStatus,
    *,
    from_: Iterable[JobStatus],
    **values: Any,
) -> bool:
    """Set `to` (and `values`) only if the job is in one of `from_`; True if it was."""
    if to.finished:
        values.setdefault("finished_at", utcnow())
    statement = (
        update(Job)
        .where(Job.id == job_id)  # type: ignore[arg-type]
        .where(Job.status.in_([s.value for s in from_]))  # type: ignore[attr-defined]
        .values(status=to.value, updated_at=utcnow(), **values)
    )
    return await updated_one(session, statement)


async def fail(session: AsyncSession, job_id: str, reason: str) -> bool:
    """Fail an unfinished job with a reason meant for the person who sent the file."""
    return await move(session, job_id, JobStatus.failed, from_=ACTIVE, error=reason[:2000])
