"""How far a job's chunks are: the one count both the splitter and the merge decide on."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import Chunk, ChunkStatus


async def count_done(session: AsyncSession, job_id: str) -> int:
    statement = (
        select(func.count())
        .select_from(Chunk)
        .where(col(Chunk.job_id) == job_id)
        .where(col(Chunk.status) == ChunkStatus.done.value)
    )
    return int((await session.exec(statement)).one())
