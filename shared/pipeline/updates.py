"""The one step every state change here is made of: a conditional UPDATE that took or not.

The WHERE names the state the row may leave from, so of two workers racing on the
same row (arq delivers at least once) only one matches it; the other learns so from
the row count and leaves what follows to the winner.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Update
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import SessionFactory
from shared.retry import transient


async def updated_one(session: AsyncSession, statement: Update) -> bool:
    """Run `statement` in the caller's transaction; True if it changed exactly one row."""
    result = cast(CursorResult[Any], await session.exec(statement))
    return result.rowcount == 1


@transient
async def update_one(sessions: SessionFactory, statement: Update) -> bool:
    """Run and commit `statement` on its own, retried on transient errors; True if it
    changed exactly one row.

    Safe to retry because it is one statement; but a retry after a commit whose answer
    was lost reads False, as for a loser. So what must follow a change is decided
    from the row's state afterwards (see shared.pipeline.outcomes), not from this answer alone."""
    async with sessions() as session:
        changed = await updated_one(session, statement)
        await session.commit()
    return changed
