"""Who is calling: an API key sent as `Authorization: Bearer`, or nobody when the API is open.

`VTX_AUTH=auto` (the default) keeps the API open until the first key exists (`vtx keys
create`), then requires a key on every request; `required` always does, `off` never.
A key sees only its own jobs: another key's job answers 404, as an unknown one does.
Media links carry a short-lived token signed for one job, because a `<video>` element
cannot send a header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request, status

from services.gateway.deps import ResourcesDep
from shared import apikeys
from shared.models import Job
from shared.runtime import Resources

log = structlog.get_logger(__name__)

KEY_REQUIRED = "This server requires an API key: send it as 'Authorization: Bearer <key>'."
KEY_REFUSED = "The API key is not valid (unknown or revoked)."


@dataclass(frozen=True)
class Caller:
    """The key behind a request; `key_id` None means the API is open to everyone."""

    key_id: str | None = None

    def owns(self, job: Job) -> bool:
        return self.key_id is None or job.owner_id == self.key_id


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


async def keys_required(res: Resources) -> bool:
    mode = res.settings.auth
    if mode != "auto":
        return mode == "required"
    async with res.sessions() as session:
        return await apikeys.any_active(session)


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


def too_many(message: str, retry_after_s: int) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        message,
        headers={"Retry-After": str(max(1, retry_after_s))},
    )


async def rate_limit(res: Resources, key_id: str) -> None:
    """A fixed one-minute window per key in Redis; if Redis is away, requests pass."""
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
    except Exception as exc:
        log.warning("rate_limit.unavailable", error=repr(exc))
        return
    if int(count) > limit:
        raise too_many(
            f"This key made more than {limit} requests this minute (VTX_RATE_LIMIT_PER_MINUTE).",
            60 - int(now) % 60,
        )


# ------------------------------------------------------------------ media links
def _mac(secret: bytes, job_id: str, expires: int) -> str:
    digest = hmac.new(secret, f"media:{job_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def media_token(secret: bytes, job_id: str, ttl_s: int, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{expires}.{_mac(secret, job_id, expires)}"


def media_token_valid(secret: bytes, job_id: str, token: str, now: float | None = None) -> bool:
    stamp, _, mac = token.partition(".")
    if not stamp.isdigit() or int(stamp) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_mac(secret, job_id, int(stamp)), mac)
