"""Who is calling: an API key sent as `Authorization: Bearer`, or nobody when the API is open.

`VTX_AUTH=auto` (the default) keeps the API open until the first key is made (`vtx keys
create`), then requires a key on every request for good: revoking every key does not
reopen it (only `VTX_AUTH=off` does); `required` always does, `off` never.
A key sees only its own jobs: another key's job answers 404, as an unknown one does.
Media links carry a short-lived token signed for one job and the key that asked,
because a `<video>` element cannot send a header; it dies with that key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.gateway.deps import ResourcesDep
from services.gateway.problems import QuotaExceeded, Unauthorized
from shared import apikeys
from shared.metrics import RATE_LIMIT_UNAVAILABLE
from shared.models import Job
from shared.runtime import Resources

log = structlog.get_logger(__name__)

KEY_REQUIRED = "This server requires an API key: send it as 'Authorization: Bearer <key>'."
KEY_REFUSED = "The API key is not valid (unknown or revoked)."
MEDIA_LINK_REFUSED = (
    "The media token is not valid for this job, has expired, or its key was revoked: "
    "fetch the job again for a fresh links.media."
)

# What "Redis cannot be reached" looks like; any other error is a fault to see, not to pass.
REDIS_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True)
class Caller:
    """The key behind a request; `key_id` None means the API is open to everyone."""

    key_id: str | None = None

    def owns(self, job: Job) -> bool:
        return self.key_id is None or job.owner_id == self.key_id


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def unauthorized(message: str) -> Unauthorized:
    return Unauthorized(message)


async def keys_required(res: Resources) -> bool:
    async with res.sessions() as session:
        return await apikeys.required(session, res.settings.auth)


async def identify(request: Request, res: Resources) -> Caller:
    """The caller, or 401; with keys on, counts the request against the key's rate."""
    if not await keys_required(res):
        return Caller()
    token = bearer(request)
    if token is None:
        raise unauthorized(KEY_REQUIRED)
    async with res.sessions() as session:
        row = await apikeys.active(session, token)
    if row is None:
        raise unauthorized(KEY_REFUSED)
    await rate_limit(res, row.id)
    return Caller(row.id)


async def caller(request: Request, res: ResourcesDep) -> Caller:
    found: Caller = await identify(request, res)
    request.state.caller = found
    return found


CallerDep = Annotated[Caller, Depends(caller)]


def too_many(message: str, retry_after_s: int) -> QuotaExceeded:
    return QuotaExceeded(message, retry_after_s)


async def rate_limit(res: Resources, key_id: str) -> None:
    """A fixed one-minute window per key in Redis.

    If Redis cannot be reached, requests pass (chosen so a Redis outage does not lock
    every key out of reading its transcripts), logged and counted in
    `vtx_rate_limit_unavailable_total`; any other error is a fault and propagates.
    """
    limit = res.settings.rate_limit_per_minute
    if limit <= 0:
        return
    now = time.time()
    window = int(now // 60)
    name = f"vtx:rate:{key_id}:{window}"
    try:
        async with res.queue.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, 120)
            count, _ = await pipe.execute()
    except REDIS_UNREACHABLE as exc:
        RATE_LIMIT_UNAVAILABLE.inc()
        log.warning("rate_limit.unavailable", key_id=key_id, error=repr(exc))
        return
    if int(count) > limit:
        raise too_many(
            f"This key made more than {limit} requests this minute (VTX_RATE_LIMIT_PER_MINUTE).",
            60 - int(now) % 60,
        )


# ------------------------------------------------------------------ media links
# `<expiry>.<mac>`: the expiry in Unix seconds (ASCII digits, at most 12), the MAC 24
# bytes of HMAC-SHA256 in unpadded URL-safe base64 (always 32 characters).
_TOKEN = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{32})")


def _mac(secret: bytes, job_id: str, key_id: str, expires: int) -> str:
    signed = f"media:{job_id}:{key_id}:{expires}".encode()
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def media_token(
    secret: bytes, job_id: str, key_id: str, ttl_s: int, now: float | None = None
) -> str:
    """A token for `job_id`'s media, good for `ttl_s` and only while `key_id` stands."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{expires}.{_mac(secret, job_id, key_id, expires)}"


def parse_media_token(token: str) -> tuple[int, str] | None:
    """Expiry and MAC of a well-formed token; None for anything else (never an error)."""
    match = _TOKEN.fullmatch(token)
    return None if match is None else (int(match[1]), match[2])


def media_token_valid(
    secret: bytes, job_id: str, key_id: str, token: str, now: float | None = None
) -> bool:
    """Whether `token` was signed for this job and key and has not expired."""
    parsed = parse_media_token(token)
    if parsed is None:
        return False
    expires, mac = parsed
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_mac(secret, job_id, key_id, expires), mac)


async def media_token_accepted(
    session: AsyncSession, secret: bytes, job_id: str, token: str
) -> bool:
    """A token opens a job's media only if signed for its owner, whose key still stands."""
    if parse_media_token(token) is None:
        return False  # refuse malformed tokens before touching the database
    job = await session.get(Job, job_id)
    owner = job.owner_id if job is not None else None
    if owner is None or not media_token_valid(secret, job_id, owner, token):
        return False
    return await apikeys.active_id(session, owner) is not None
