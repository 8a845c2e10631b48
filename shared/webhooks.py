"""Callbacks: a signed POST to a job's `callback_url` once it completes or fails.

Delivery is an arq task on the transcriber's queue (whichever worker ended the job;
the transcriber keeps a slot beside its chunks), so it never holds up the pipeline.
Each attempt is claimed in the database before it is made and recorded after
(`CallbackDelivery` rows, shown on the job); a failed attempt is retried with
doubling delays for `VTX_CALLBACK_RETRY_FOR`, and the reconciler puts back any
delivery that Redis lost. Receivers may see a delivery twice (a worker can die
between the POST and its record): `X-Vtx-Delivery` names it, to deduplicate.

The signature (`X-Vtx-Signature: t=<unix seconds>,v1=<hex>`) is HMAC-SHA256, keyed
with `VTX_WEBHOOK_SECRET`, over `<t>.` followed by the raw body; `verify_signature`
checks it, and the timestamp, against replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, update
from sqlmodel import col

from shared import dispatch, netguard
from shared.jobs import TRANSCRIBE_QUEUE, CallbackPayload
from shared.models import CallbackDelivery, CallbackStatus, Job, aware, utcnow
from shared.retry import transient
from shared.runtime import Resources
from shared.secrets import secret

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Vtx-Signature"
EVENT_HEADER = "X-Vtx-Event"
DELIVERY_HEADER = "X-Vtx-Delivery"
TOLERANCE_S = 300
MAX_BACKOFF_S = 900.0


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
    """True if `header` signs exactly `body` with `key` and is at most `tolerance_s` old."""
    key = key.encode() if isinstance(key, str) else key
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not given:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance_s:
        return False
    expected = sign(key, body, int(stamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def event_of(job: Job) -> str:
    return f"job.{job.status}"


def body_of(job: Job) -> bytes:
    """What the receiver gets: the job's outcome and where to fetch the transcript."""
    document = {
        "event": event_of(job),
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


@transient
async def job_ended(res: Resources, job_id: str, queue: str = TRANSCRIBE_QUEUE) -> bool:
    """Start delivering a finished job's callback, once; True if this call started it."""
    statement = (
        update(Job)
        .where(col(Job.id) == job_id)
        .where(col(Job.callback_url).is_not(None))
        .where(col(Job.callback_status).is_(None))
        .values(callback_status=CallbackStatus.pending.value, callback_next_at=utcnow())
    )
    async with res.sessions() as session:
        result = cast(CursorResult[Any], await session.exec(statement))
        await session.commit()
    if result.rowcount != 1:
        return False
    try:
        await dispatch.callback(res.queue, job_id, 0, queue)
    except Exception as exc:  # the row says pending: the reconciler enqueues it later
        log.warning("callback.enqueue_deferred", job_id=job_id, error=repr(exc))
    return True


async def deliver_callback(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    task = CallbackPayload.model_validate(payload)
    res: Resources = ctx["resources"]
    job = await _claim(res, task)
    if job is None:
        return "stale"
    attempt = task.attempt + 1
    code, error, took_ms = await _post(res, job, attempt)
    delivered = code is not None and 200 <= code < 300
    give_up = isinstance(error, netguard.Refused)
    delay = min(res.settings.callback_backoff_s * 2**task.attempt, MAX_BACKOFF_S)
    ended = aware(job.finished_at or utcnow())
    if not delivered and utcnow() + timedelta(seconds=delay) > ended + (
        res.settings.callback_retry_for
    ):
        give_up = True
    outcome = (
        CallbackStatus.delivered
        if delivered
        else (CallbackStatus.failed if give_up else CallbackStatus.pending)
    )
    reason = None if error is None else str(error)[:500]
    await _record(res, job.id, attempt, code, reason, took_ms, outcome, delay)
    log.info(
        "callback.attempt",
        job_id=job.id,
        attempt=attempt,
        status_code=code,
        error=reason,
        outcome=outcome.value,
    )
    if outcome == CallbackStatus.pending:
        await dispatch.callback(res.queue, job.id, attempt, task.queue, defer_s=delay)
    return outcome.value


@transient
async def _claim(res: Resources, task: CallbackPayload) -> Job | None:
    """Take attempt `task.attempt + 1`; None if it was made already or nothing is due."""
    hold = res.settings.callback_timeout_s + 30  # the reconciler keeps off meanwhile
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
    async with res.sessions() as session:
        result = cast(CursorResult[Any], await session.exec(statement))
        await session.commit()
        if result.rowcount != 1:
            return None
        return await session.get(Job, task.job_id)


async def _post(res: Resources, job: Job, attempt: int) -> tuple[int | None, Exception | None, int]:
    body = body_of(job)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "vtx-callbacks",
        EVENT_HEADER: event_of(job),
        DELIVERY_HEADER: f"{job.id}:{attempt}",
        SIGNATURE_HEADER: sign(secret(res.settings, "webhook"), body, int(time.time())),
    }
    began = time.perf_counter()
    try:
        url = netguard.check_url(job.callback_url or "")
        allow = netguard.allowed_networks(res.settings)
        async with (
            netguard.client(res.settings.callback_timeout_s) as http,
            netguard.pinned(http, "POST", url, allow, content=body, headers=headers) as response,
        ):
            code: int | None = response.status_code
            error: Exception | None = (
                None
                if 200 <= response.status_code < 300
                else RuntimeError(f"the receiver answered {response.status_code}")
            )
    except Exception as exc:
        code, error = None, exc
    return code, error, round((time.perf_counter() - began) * 1000)


@transient
async def _record(
    res: Resources,
    job_id: str,
    attempt: int,
    code: int | None,
    error: str | None,
    took_ms: int,
    outcome: CallbackStatus,
    delay_s: float,
) -> None:
    async with res.sessions() as session:
        if await session.get(CallbackDelivery, (job_id, attempt)) is None:
            session.add(
                CallbackDelivery(
                    job_id=job_id,
                    attempt=attempt,
                    status_code=code,
                    error=error,
                    duration_ms=took_ms,
                )
            )
        next_at = utcnow() + timedelta(seconds=delay_s) if outcome == "pending" else None
        await session.exec(
            update(Job)
            .where(col(Job.id) == job_id)
            .values(callback_status=outcome.value, callback_next_at=next_at)
        )
        await session.commit()
