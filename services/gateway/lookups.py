"""Finding the job a request names: the one place that decides what "not found" is.

Text that cannot be an id, an id with no row and another key's job all answer the
same 404, so a caller learns nothing about jobs that are not theirs.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends
from sqlmodel.ext.asyncio.session import AsyncSession

from services.gateway.auth import Caller, CallerDep
from services.gateway.deps import SessionDep
from services.gateway.problems import NotFound
from shared.models import Job

JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


async def job_or_404(session: AsyncSession, job_id: str, caller: Caller | None) -> Job:
    """The job, if it exists and `caller` may see it (None: access was settled already,
    as by a media token).

    Text that cannot be an id is unknown without a query: the database may refuse it
    (PostgreSQL does NUL), and that must not be a 500."""
    if _JOB_ID.fullmatch(job_id) is None:
        raise NotFound("No job with this id: a job's id is 32 hex digits.")
    job = await session.get(Job, job_id)
    if job is None or (caller is not None and not caller.owns(job)):
        raise NotFound(f"No job with id '{job_id}'.")
    return job


async def owned_job(session: SessionDep, caller: CallerDep, job_id: str) -> Job:
    """The path's job, as a dependency of the routes under /v1/jobs/{job_id}."""
    return await job_or_404(session, job_id, caller)


OwnedJob = Annotated[Job, Depends(owned_job)]
