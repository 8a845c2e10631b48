"""One poller per gateway process for every OpenAI request waiting for its job to end.

Each waiting request used to read its own job row four times a second: 50 at once were
200 queries a second, a fifth of a core taken from the transcribers (4 ms of CPU per
request per second of waiting, measured on SQLite). Here one query a tick reads whether
any of the waited-on jobs has ended, however many requests wait; with nobody waiting it
costs nothing (the loop is polling.py's).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import col, select

from services.gateway.polling import Poller
from shared.db import SessionFactory
from shared.models import Job, JobStatus

TICK_S = 0.25
IDS_PER_QUERY = 500  # well below any database's limit on bound parameters


@dataclass(frozen=True)
class Ended:
    """How a waited-on job ended: completed or failed (with its reason), or deleted."""

    status: JobStatus | None  # None: the row is gone
    error: str | None = None


class EndWaiter(Poller):
    """Started and stopped by the gateway's lifespan; routes reach it through `WaiterDep`.
    While the database is away, every request keeps waiting."""

    name = "openai.wait"

    def __init__(self, sessions: SessionFactory, tick_s: float = TICK_S) -> None:
        super().__init__(tick_s)
        self._sessions = sessions
        self._waiting: dict[str, set[asyncio.Future[Ended]]] = {}

    async def ended(self, job_id: str) -> Ended:
        """Wait until the job has completed, failed or been deleted (cancel to stop)."""
        future: asyncio.Future[Ended] = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(job_id, set())
        waiters.add(future)
        self.wake()
        try:
            return await future
        finally:
            waiters.discard(future)
            if not waiters and self._waiting.get(job_id) is waiters:
                del self._waiting[job_id]

    def idle(self) -> bool:
        return not self._waiting

    async def tick(self) -> None:
        """Read the waited-on jobs' states and answer the requests of those that ended."""
        ids = sorted(self._waiting)
        rows: dict[str, tuple[str, str | None]] = {}
        async with self._sessions() as session:
            for start in range(0, len(ids), IDS_PER_QUERY):
                part = ids[start : start + IDS_PER_QUERY]
                found = await session.exec(
                    select(Job.id, Job.status, Job.error).where(col(Job.id).in_(part))
                )
                rows.update({job_id: (status, error) for job_id, status, error in found})
        for job_id in ids:
            ended = _ended(rows.get(job_id))
            if ended is not None:
                self._answer(job_id, ended)

    def _answer(self, job_id: str, ended: Ended) -> None:
        for future in self._waiting.get(job_id, ()):
            if not future.done():
                future.set_result(ended)


def _ended(row: tuple[str, str | None] | None) -> Ended | None:
    """The end a row shows; None while the job is still under way."""
    if row is None:
        return Ended(None)
    status = JobStatus(row[0])
    return Ended(status, row[1]) if status.finished else None


def end_waiter(request: Request) -> EndWaiter:
    waiter: EndWaiter = request.app.state.end_waiter
    return waiter


WaiterDep = Annotated[EndWaiter, Depends(end_waiter)]
