"""What one caller may hold at once, all in one place: unfinished jobs, audio in flight,
stored media.

Per API key: unfinished jobs (`VTX_MAX_ACTIVE_JOBS`), hours of audio not yet
transcribed (`VTX_QUOTA_AUDIO_HOURS`, counted from the probe's duration, so a tiny file
that declares hours of audio is refused before anything decodes it) and bytes of
media still kept (`VTX_QUOTA_STORAGE_GB`). A key's own overrides (`ApiKey.quota_*`,
set at `vtx keys create`) take precedence; 0 means no limit. With the API open, keyless
jobs share one storage cap and have no job or audio budget.

A full budget of work in flight is a 429 with Retry-After (it frees up as jobs end);
full storage, or a file larger than a whole budget, is a 413 (waiting cannot help).
The final check runs under a Redis lock per caller around the store write and the
insert, so two uploads at once cannot both take the last room; the database is the
truth for what is held.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from prometheus_client import Counter
from redis.asyncio.lock import Lock
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import ColumnElement, case, func
from sqlmodel import col, select

from services.gateway.auth import Caller, too_many
from services.gateway.problems import TooLarge
from services.gateway.uploads import too_large
from shared.models import ApiKey, Job
from shared.pipeline.transitions import ACTIVE
from shared.runtime import Resources

log = structlog.get_logger(__name__)

GB = 1024**3
RETRY_S = 10  # jobs of a few minutes end about this often
BUSY_RETRY_S = 2
LOCK_WAIT_S = 30
LOCK_HOLD_S = 30
STORE_BYTES_PER_S = 4 * 1024 * 1024  # slowest store write the lock's lifetime allows for
DELETE_HINT = (
    "delete jobs you no longer need (DELETE /v1/jobs/{id} removes a job's media and "
    "transcript); the media of ended jobs is also removed after VTX_MEDIA_RETENTION"
)

# Redis cannot be reached; any other Redis error is a fault and propagates.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

UNLOCKED = Counter(
    "vtx_quota_checks_unlocked",
    "Uploads whose quota check ran without its Redis lock (Redis unreachable): "
    "two uploads of one key at that moment could both pass.",
)


@dataclass(frozen=True)
class Limits:
    """A caller's limits; 0 means none. `own_*`: set for this key rather than server-wide."""

    active_jobs: int
    audio_s: float
    storage_bytes: int
    own_audio: bool = False
    own_storage: bool = False

    @property
    def any(self) -> bool:
        return self.active_jobs > 0 or self.audio_s > 0 or self.storage_bytes > 0

    def audio_source(self) -> str:
        return "this key's own audio quota" if self.own_audio else "VTX_QUOTA_AUDIO_HOURS"

    def storage_source(self) -> str:
        return "this key's own storage quota" if self.own_storage else "VTX_QUOTA_STORAGE_GB"


@dataclass(frozen=True)
class Usage:
    """What a caller holds now: unfinished jobs, their audio, media still stored."""

    active_jobs: int
    audio_s: float
    stored_bytes: int


@dataclass(frozen=True)
class Allowance:
    """The most a `url=` download may bring, and the refusal once it brings more."""

    max_bytes: int
    refusal: TooLarge


def _owned_by(caller: Caller) -> ColumnElement[bool]:
    """A key's jobs; with the API open, every keyless job (they share one budget)."""
    if caller.key_id is None:
        return col(Job.owner_id).is_(None)
    return col(Job.owner_id) == caller.key_id


async def limits_for(res: Resources, caller: Caller) -> Limits:
    """The caller's limits: a key's overrides, else the server's settings."""
    settings = res.settings
    if caller.key_id is None:
        return Limits(0, 0.0, int(settings.quota_storage_gb * GB))
    async with res.sessions() as session:
        key = await session.get(ApiKey, caller.key_id)
    audio_h = key.quota_audio_hours if key is not None else None
    storage_gb = key.quota_storage_gb if key is not None else None
    return Limits(
        active_jobs=settings.max_active_jobs,
        audio_s=(settings.quota_audio_hours if audio_h is None else audio_h) * 3600,
        storage_bytes=int((settings.quota_storage_gb if storage_gb is None else storage_gb) * GB),
        own_audio=audio_h is not None,
        own_storage=storage_gb is not None,
    )


async def usage_of(res: Resources, caller: Caller) -> Usage:
    """One aggregate query; a job whose length the probe could not tell counts as the
    longest allowed (VTX_MAX_DURATION_S), so it cannot slip past the audio budget."""
    active = col(Job.status).in_([s.value for s in ACTIVE])
    seconds = func.coalesce(col(Job.duration_s), res.settings.max_duration_s)
    kept = col(Job.media_deleted_at).is_(None)
    statement = select(
        func.coalesce(func.sum(case((active, 1), else_=0)), 0),
        func.coalesce(func.sum(case((active, seconds), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((kept, col(Job.size_bytes)), else_=0)), 0),
    ).where(_owned_by(caller))
    async with res.sessions() as session:
        jobs, audio_s, stored = (await session.exec(statement)).one()
    return Usage(int(jobs), float(audio_s), int(stored))


async def requests_this_minute(res: Resources, caller: Caller) -> int | None:
    """The key's count in the rate limiter's current window (the key name mirrors
    services.gateway.auth.rate_limit); None when open or when Redis cannot say."""
    if caller.key_id is None:
        return None
    name = f"vtx:rate:{caller.key_id}:{int(time.time() // 60)}"
    try:
        count = await res.queue.get(name)
    except UNREACHABLE as exc:
        log.warning("usage.rate_unavailable", error=repr(exc))
        return None
    return int(count or 0)


async def check_before_upload(res: Resources, caller: Caller) -> None:
    """Refuse at once, before the body is read, what no upload could pass now."""
    limits = await limits_for(res, caller)
    if not limits.any:
        return
    _refuse_when_full(limits, await usage_of(res, caller))


async def download_allowance(res: Resources, caller: Caller) -> Allowance:
    """`url=` media may bring no more than the upload limit and the storage still free."""
    max_upload = res.settings.max_upload_bytes
    upload_cap = Allowance(max_upload, too_large(max_upload))
    limits = await limits_for(res, caller)
    if limits.storage_bytes <= 0:
        return upload_cap
    left = max(0, limits.storage_bytes - (await usage_of(res, caller)).stored_bytes)
    if left >= max_upload:
        return upload_cap
    message = (
        f"The download is larger than the {_size(left)} this caller may still store "
        f"({_size(limits.storage_bytes)}, {limits.storage_source()}); {DELETE_HINT}."
    )
    return Allowance(left, TooLarge(message, param="url"))


@asynccontextmanager
async def admitted(
    res: Resources, caller: Caller, duration_s: float | None, size: int
) -> AsyncIterator[None]:
    """Check the new job against every limit and hold the caller's lock while the body
    stores and inserts it; TooLarge or QuotaExceeded when it does not fit."""
    limits = await limits_for(res, caller)
    if not limits.any:
        yield
        return
    seconds = res.settings.max_duration_s if duration_s is None else duration_s
    name = f"vtx:quota:{caller.key_id or 'open'}"
    async with _locked(res, name, LOCK_HOLD_S + size / STORE_BYTES_PER_S):
        _refuse_if_over(limits, await usage_of(res, caller), seconds, size)
        yield


@asynccontextmanager
async def _locked(res: Resources, name: str, hold_s: float) -> AsyncIterator[None]:
    """The caller's quota lock; without Redis the check goes on unlocked (the database
    still counts), logged and counted, since the job is queued later by the reconciler."""
    lock: Lock = res.queue.lock(name, timeout=hold_s, blocking_timeout=LOCK_WAIT_S)
    try:
        acquired: bool | None = await lock.acquire()
    except UNREACHABLE as exc:
        log.warning("quota.lock_unavailable", error=repr(exc))
        UNLOCKED.inc()
        acquired = None
    if acquired is False:
        raise too_many("Other uploads of this key are being checked; try again.", BUSY_RETRY_S)
    try:
        yield
    finally:
        if acquired:
            try:
                await lock.release()
            except LockError:  # held longer than its lifetime: the store write was slow
                log.warning("quota.lock_expired", name=name, hold_s=round(hold_s))
            except UNREACHABLE as exc:
                log.warning("quota.lock_release_failed", error=repr(exc))


def _refuse_when_full(limits: Limits, usage: Usage) -> None:
    if limits.storage_bytes > 0 and usage.stored_bytes >= limits.storage_bytes:
        raise TooLarge(
            f"This caller already stores {_size(usage.stored_bytes)} of media, its limit of "
            f"{_size(limits.storage_bytes)} ({limits.storage_source()}); {DELETE_HINT}.",
        )
    if limits.audio_s > 0 and usage.audio_s >= limits.audio_s:
        raise too_many(
            f"This key already has {_duration(usage.audio_s)} of audio in flight, its limit "
            f"of {_duration(limits.audio_s)} ({limits.audio_source()}); it frees up as its "
            "jobs finish.",
            RETRY_S,
        )
    _refuse_if_busy(limits, usage)


def _refuse_if_over(limits: Limits, usage: Usage, seconds: float, size: int) -> None:
    if limits.storage_bytes > 0 and usage.stored_bytes + size > limits.storage_bytes:
        raise TooLarge(
            f"This caller stores {_size(usage.stored_bytes)} of media and this file adds "
            f"{_size(size)}, more than its limit of {_size(limits.storage_bytes)} "
            f"({limits.storage_source()}); {DELETE_HINT}.",
        )
    if limits.audio_s > 0 and seconds > limits.audio_s:
        raise TooLarge(
            f"This file holds {_duration(seconds)} of audio, more than this key's whole "
            f"budget of {_duration(limits.audio_s)} in flight ({limits.audio_source()}); "
            "send it in shorter parts, or ask for a larger quota.",
        )
    if limits.audio_s > 0 and usage.audio_s + seconds > limits.audio_s:
        raise too_many(
            f"This key has {_duration(usage.audio_s)} of audio in flight and this file adds "
            f"{_duration(seconds)}, more than its limit of {_duration(limits.audio_s)} "
            f"({limits.audio_source()}); it frees up as its jobs finish.",
            RETRY_S,
        )
    _refuse_if_busy(limits, usage)


def _refuse_if_busy(limits: Limits, usage: Usage) -> None:
    if limits.active_jobs > 0 and usage.active_jobs >= limits.active_jobs:
        raise too_many(
            f"This key already has {limits.active_jobs} unfinished jobs "
            "(VTX_MAX_ACTIVE_JOBS); wait for one to end.",
            RETRY_S,
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _size(n: float) -> str:
    units = ("B", "KB", "MB", "GB")
    step = 0
    while n >= 1024 and step < len(units) - 1:
        n /= 1024
        step += 1
    return f"{n:.1f} {units[step]}" if step else f"{n:.0f} B"
