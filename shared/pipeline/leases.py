"""Leases: who works on a split, a chunk or a diarization now, proven by a heartbeat in the DB.

A worker claims work with a conditional update (free, expired or already its own),
renews it while it works and releases it when done. A worker that dies stops
renewing; once its lease expires the reconciler hands the work to someone else,
so recovery takes about one lease, not arq's longest job timeout.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import and_, func, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from shared.db import SessionFactory
from shared.models import Chunk, ChunkStatus, Diarization, Job, JobStatus, utcnow
from shared.pipeline.updates import update_one

log = structlog.get_logger(__name__)


def worker_identity() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


Leased = type[Job] | type[Chunk] | type[Diarization]


def unleased(model: Leased) -> ColumnElement[bool]:
    """Nobody holds it: never leased, released, or the holder stopped heartbeating."""
    return or_(col(model.lease_expires_at).is_(None), col(model.lease_expires_at) < utcnow())


def _free_or_mine(model: Leased, owner: str) -> ColumnElement[bool]:
    return or_(unleased(model), col(model.lease_owner) == owner)


class Lease:
    """One claimed piece of work: a job's split, a chunk of it, or its diarization."""

    def __init__(
        self, sessions: SessionFactory, target: ColumnElement[bool], model: Any, owner: str
    ) -> None:
        self._sessions = sessions
        self._target = target
        self._model = model
        self.owner = owner
        self.lost = asyncio.Event()
        self._held = True

    def ended(self) -> None:
        """The update that finished the work cleared the lease with it: releasing it again
        would be one more UPDATE and COMMIT per chunk for nothing."""
        self._held = False

    async def _update(self, where: ColumnElement[bool], **values: Any) -> bool:
        statement = update(self._model).where(self._target).where(where).values(**values)
        return await update_one(self._sessions, statement)

    async def renew(self, ttl_s: float) -> bool:
        expires = utcnow() + timedelta(seconds=ttl_s)
        mine = col(self._model.lease_owner) == self.owner
        return await self._update(mine, lease_expires_at=expires)

    async def release(self) -> None:
        if not self._held:
            return
        self._held = False
        mine = col(self._model.lease_owner) == self.owner
        await self._update(mine, lease_owner=None, lease_expires_at=None)

    @asynccontextmanager
    async def heartbeat(self, ttl_s: float) -> AsyncIterator[Lease]:
        """Renew every third of the lease; `lost` is set if the work was taken or deleted."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(ttl_s / 3)
                try:
                    still = await self.renew(ttl_s)
                except Exception as exc:  # keep beating: the next renewal may get through
                    log.warning("lease.renew_failed", error=repr(exc))
                    continue
                if not still:
                    self.lost.set()
                    return

        task = asyncio.create_task(beat())
        try:
            yield self
        finally:
            task.cancel()
            try:
                await asyncio.gather(task, return_exceptions=True)  # ours still propagates
            finally:
                await self._release_or_log()

    async def _release_or_log(self) -> None:
        try:
            await asyncio.shield(self.release())
        except Exception as exc:  # it expires on its own within one lease
            log.warning("lease.release_failed", error=repr(exc))


async def claim_split(
    sessions: SessionFactory, job_id: str, owner: str, ttl_s: float
) -> Lease | None:
    """Take a job's split if nobody live holds it; counts the attempt."""
    target = col(Job.id) == job_id
    statement = (
        update(Job)
        .where(target)
        .where(col(Job.status).in_([JobStatus.queued.value, JobStatus.splitting.value]))
        .where(_free_or_mine(Job, owner))
        .values(
            status=JobStatus.splitting.value,
            lease_owner=owner,
            lease_expires_at=utcnow() + timedelta(seconds=ttl_s),
            split_attempts=Job.split_attempts + 1,
            started_at=func.coalesce(Job.started_at, utcnow()),
        )
    )
    if not await update_one(sessions, statement):
        return None
    return Lease(sessions, target, Job, owner)


async def claim_chunk(
    sessions: SessionFactory, job_id: str, index: int, owner: str, ttl_s: float
) -> Lease | None:
    """Take a pending chunk if nobody live holds it; counts the attempt."""
    target = and_(col(Chunk.job_id) == job_id, col(Chunk.index) == index)
    return await _claim_pending(sessions, Chunk, target, owner, ttl_s)


async def claim_diarization(
    sessions: SessionFactory, job_id: str, owner: str, ttl_s: float
) -> Lease | None:
    """Take a pending diarization if nobody live holds it; counts the attempt."""
    target = col(Diarization.job_id) == job_id
    return await _claim_pending(sessions, Diarization, target, owner, ttl_s)


async def _claim_pending(
    sessions: SessionFactory,
    model: type[Chunk] | type[Diarization],
    target: ColumnElement[bool],
    owner: str,
    ttl_s: float,
) -> Lease | None:
    """Chunks and diarizations share their life: pending, leased per attempt, ended."""
    statement = (
        update(model)
        .where(target)
        .where(col(model.status) == ChunkStatus.pending.value)
        .where(_free_or_mine(model, owner))
        .values(
            lease_owner=owner,
            lease_expires_at=utcnow() + timedelta(seconds=ttl_s),
            attempts=model.attempts + 1,
        )
    )
    if not await update_one(sessions, statement):
        return None
    return Lease(sessions, target, model, owner)
