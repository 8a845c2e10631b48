"""Callbacks: a signed POST to a job's `callback_url` once it completes or fails.

Deliveries are arq tasks on their own queue (`CALLBACK_QUEUE`), served by the
gateway (services/gateway/deliveries.py) with `VTX_CALLBACK_CONCURRENCY` slots, so
a receiver never holds a slot that transcribes, and only the gateway reaches out.
An attempt has one deadline, `VTX_CALLBACK_TIMEOUT_S`, for the whole exchange
(resolving, connecting, sending, reading the answer, of which at most
`MAX_ANSWER_BYTES` are read): a receiver that trickles `102 Processing` or bytes
for ever fails like one that refuses.

Each attempt is claimed in the database before it is made and recorded after
(`CallbackDelivery` rows, shown on the job); a failed attempt is retried with
doubling delays for `VTX_CALLBACK_RETRY_FOR` after the job ended, and the
reconciler puts back any delivery that Redis lost. The window holds even for
attempts that never get recorded (a worker killed in the middle each time): a
retry that comes due after it is not made, the callback fails. Receivers may see
a delivery twice (a worker can die between the POST and its record): the delivery
id, `<job>:<attempt>`, names it, to deduplicate.

The signature (`X-Vtx-Signature: t=<unix seconds>,v1=<hex>`) is HMAC-SHA256 over
`<t>.` followed by the raw body, keyed with the webhook secret of the API key that
submitted the job, so one tenant cannot forge another's callbacks. Jobs submitted
without a key, and keys made before keys had secrets, use `VTX_WEBHOOK_SECRET`
(their receivers verify as before). The delivery id is in the body (`"delivery"`)
as well as in `X-Vtx-Delivery`, so it is signed and cannot be swapped.
`verify_signature` checks a signature, and its timestamp, against replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import update
from sqlmodel import col

from shared import netguard
from shared.models import ApiKey, CallbackDelivery, CallbackStatus, Job, aware, utcnow
from shared.pipeline import dispatch
from shared.pipeline.contracts import CallbackPayload
from shared.pipeline.updates import update_one
from shared.retry import transient
from shared.runtime import Resources
from shared.secrets import load_secret

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Vtx-Signature"
EVENT_HEADER = "X-Vtx-Event"
DELIVERY_HEADER = "X-Vtx-Delivery"
TOLERANCE_S = 300
MAX_STAMP_DIGITS = 12  # unix seconds until the year 33658
MAX_BACKOFF_S = 900.0
MAX_ANSWER_BYTES = 64 * 1024


def sign(key: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    key: bytes | str,
    body: bytes,
    header: str,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True if `header` signs exactly `body` with `key` and is at most `tolerance_s` old.

    Whatever the header holds, the answer is True or False, never an exception: the
    timestamp must be ASCII digits, at most `MAX_STAMP_DIGITS` of them."""
    key = key.encode() if isinstance(key, str) else key
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_STAMP_DIGITS):
        return False
    if not given or abs((time.time() if now is None else now) - int(stamp)) > tolerance_s:
        return False
    expected = sign(key, body, int(stamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def event_of(job: Job) -> str:
    return f"job.{job.status}"


def delivery_id(job_id: str, attempt: int) -> str:
    return f"{job_id}:{attempt}"


def body_of(job: Job, attempt: int) -> bytes:
    """What the receiver gets: which delivery this is, the job's outcome and where to
    fetch the transcript."""
    document = {
        "event": event_of(job),
        "delivery": delivery_id(job.id, attempt),
        "job": {
            "id": job.id,
            "status": job.status,
            "error": job.error,
            "filename": job.filename,
            "model": job.model,
            "task": job.task,
            "duration_seconds": job.duration_s,
            "created_at": aware(job.created_at).isoformat(),
            "finished_at": aware(job.finished_at).isoformat() if job.finished_at else None,
            "links": {
                "self": f"/v1/jobs/{job.id}",
                "transcript": f"/v1/jobs/{job.id}/transcript",
            },
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


async def signing_key(res: Resources, job: Job) -> bytes:
    """The submitting key's own secret; the server's for keyless jobs and for keys made
    before keys had secrets (their receivers already verify with the server's)."""
    if job.owner_id is not None:
        async with res.sessions() as session:
            owner = await session.get(ApiKey, job.owner_id)
        if owner is not None and owner.webhook_secret:
            return owner.webhook_secret.encode()
    return await load_secret(res.settings, "webhook")


def not_started(job: Job) -> bool:
    """Whether the row, as read, has a callback still to start (the only case where
    job_ended can change anything: the URL is set once, at upload)."""
    return job.callback_url is not None and job.callback_status is None


async def job_ended(res: Resources, job_id: str) -> bool:
    """Start delivering a finished job's callback, once; True if this call started it.

    A start whose commit was lost reads as not started; the reconciler still enqueues
    it, since the row says pending."""
    statement = (
        update(Job)
        .where(col(Job.id) == job_id)
        .where(col(Job.callback_url).is_not(None))
        .where(col(Job.callback_status).is_(None))
        .values(callback_status=CallbackStatus.pending.value, callback_next_at=utcnow())
    )
    if not await update_one(res.sessions, statement):
        return False
    try:
        await dispatch.callback(res.queue, job_id, 0)
    except Exception as exc:  # the row says pending: the reconciler enqueues it later
        log.warning("callback.enqueue_deferred", job_id=job_id, error=repr(exc))
    return True


@dataclass(frozen=True)
class Answer:
    """How one attempt went: the receiver's status code, or why there was none."""

    code: int | None
    error: str | None
    took_ms: int
    final: bool = False  # retrying cannot help (the URL is refused)

    @property
    def delivered(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


async def deliver_callback(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """Make one attempt (if it is still due) and queue the next after a failure."""
    task = CallbackPayload.model_validate(payload)
    res: Resources = ctx["resources"]
    if await _expire(res, task):
        log.info("callback.gave_up", job_id=task.job_id, attempts=task.attempt)
        return CallbackStatus.failed.value
    job = await _claim(res, task)
    if job is None:
        return "stale"
    attempt = task.attempt + 1
    answer = await _post(res, job, attempt)
    delay = min(res.settings.callback_backoff_s * 2**task.attempt, MAX_BACKOFF_S)
    ended = aware(job.finished_at or utcnow())
    late = utcnow() + timedelta(seconds=delay) > ended + res.settings.callback_retry_for
    outcome = (
        CallbackStatus.delivered
        if answer.delivered
        else (CallbackStatus.failed if answer.final or late else CallbackStatus.pending)
    )
    await _record(res, job.id, attempt, answer, outcome, delay)
    log.info(
        "callback.attempt",
        job_id=job.id,
        attempt=attempt,
        status_code=answer.code,
        error=answer.error,
        outcome=outcome.value,
    )
    if outcome == CallbackStatus.pending:
        await dispatch.callback(res.queue, job.id, attempt, defer_s=delay)
    return outcome.value


async def _expire(res: Resources, task: CallbackPayload) -> bool:
    """Fail, without an attempt, a retry that comes due after the window; True if so.

    A recorded attempt decides this itself; only retries whose attempt never got
    recorded (its worker died) or that waited out an outage get here."""
    if task.attempt == 0:
        return False
    statement = (
        update(Job)
        .where(col(Job.id) == task.job_id)
        .where(col(Job.callback_status) == CallbackStatus.pending.value)
        .where(col(Job.callback_attempts) == task.attempt)
        .where(col(Job.finished_at) < utcnow() - res.settings.callback_retry_for)
        .values(callback_status=CallbackStatus.failed.value, callback_next_at=None)
    )
    return await update_one(res.sessions, statement)


async def _claim(res: Resources, task: CallbackPayload) -> Job | None:
    """Take attempt `task.attempt + 1`; None if it was made already or nothing is due.

    The hold keeps the reconciler off while the attempt runs: it outlasts the
    attempt's deadline, so an attempt is never made twice at once."""
    hold = res.settings.callback_timeout_s + 30
    statement = (
        update(Job)
        .where(col(Job.id) == task.job_id)
        .where(col(Job.callback_status) == CallbackStatus.pending.value)
        .where(col(Job.callback_attempts) == task.attempt)
        .values(
            callback_attempts=task.attempt + 1,
            callback_next_at=utcnow() + timedelta(seconds=hold),
        )
    )
    if not await update_one(res.sessions, statement):
        return None
    return await _load(res, task.job_id)


@transient
async def _load(res: Resources, job_id: str) -> Job | None:
    async with res.sessions() as session:
        return await session.get(Job, job_id)


async def _post(res: Resources, job: Job, attempt: int) -> Answer:
    """One attempt, within one deadline from the first DNS query to the answer's end."""
    body = body_of(job, attempt)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "vtx-callbacks",
        EVENT_HEADER: event_of(job),
        DELIVERY_HEADER: delivery_id(job.id, attempt),
        SIGNATURE_HEADER: sign(await signing_key(res, job), body, int(time.time())),
    }
    limit_s = res.settings.callback_timeout_s
    began = time.perf_counter()
    code: int | None = None
    error: str | None = None
    final = False
    try:
        async with asyncio.timeout(limit_s):
            code = await _exchange(res, job.callback_url or "", body, headers)
    except Exception as exc:
        error, final = _failure(exc, limit_s)
    else:
        error = None if 200 <= code < 300 else f"The receiver answered {code}."
    took_ms = round((time.perf_counter() - began) * 1000)
    return Answer(code, None if error is None else error[:500], took_ms, final)


def _failure(exc: Exception, limit_s: float) -> tuple[str, bool]:
    """Why an attempt got no answer, for a person; True if retrying cannot help."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"The receiver did not answer completely within {limit_s:g} s.", False
    if isinstance(exc, netguard.Refused):
        return str(exc), True
    return (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__), False


async def _exchange(res: Resources, target: str, body: bytes, headers: dict[str, str]) -> int:
    """POST to the checked address; read (a bounded part of) the answer to its end."""
    url = netguard.check_url(target)
    allow = netguard.allowed_networks(res.settings)
    async with (
        netguard.client(res.settings.callback_timeout_s) as http,
        netguard.pinned(http, "POST", url, allow, content=body, headers=headers) as response,
    ):
        read = 0
        async for part in response.aiter_raw():
            read += len(part)
            if read >= MAX_ANSWER_BYTES:
                break
        return response.status_code


@transient
async def _record(
    res: Resources,
    job_id: str,
    attempt: int,
    answer: Answer,
    outcome: CallbackStatus,
    delay_s: float,
) -> None:
    async with res.sessions() as session:
        if await session.get(CallbackDelivery, (job_id, attempt)) is None:
            session.add(
                CallbackDelivery(
                    job_id=job_id,
                    attempt=attempt,
                    status_code=answer.code,
                    error=answer.error,
                    duration_ms=answer.took_ms,
                )
            )
        next_at = utcnow() + timedelta(seconds=delay_s) if outcome == "pending" else None
        await session.exec(
            update(Job)
            .where(col(Job.id) == job_id)
            .values(callback_status=outcome.value, callback_next_at=next_at)
        )
        await session.commit()
