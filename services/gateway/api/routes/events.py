"""Server-Sent Events of jobs' status and progress: of one job, or of all the caller's.

`/v1/jobs/{id}/events`: each event's data is the job as `GET /v1/jobs/{id}` returns it;
one is sent at once, then one whenever status or progress changes, and the stream
closes after the `completed` or `failed` event (or `deleted`, when the job goes).
`/v1/events`: the same events for every unfinished job of the caller (its key's jobs;
every job when the API is open), jobs started later included: first one per unfinished
job, then `ready`, then each change, a job's last event being how it ended. It stays
open however many jobs end, so one connection follows a whole job list (a page holding
one stream per job would run out of the browser's six connections to a host).
(Not `/v1/jobs/events`: the jobs router's `/v1/jobs/{job_id}` comes first and would take
it.) Comments keep idle connections alive through proxies. No stream reads
the database itself: the process's one `EventWatcher` does, for all of them.
Streams are bounded: `max_event_streams` at once per key (per client address when
the API is open), each for at most `event_stream_max_s`, after which the client
reconnects (an `EventSource` does so by itself, after `retry`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.gateway.api.routes.jobs import NOT_FOUND
from services.gateway.api.routes.media import JobId
from services.gateway.auth import Caller, CallerDep, too_many
from services.gateway.deps import ResourcesDep
from services.gateway.errors import AUTH_ERRORS
from services.gateway.lookups import job_or_404
from services.gateway.problems import QuotaExceeded
from services.gateway.schemas import ErrorOut, JobOut
from services.gateway.views import job_out
from services.gateway.watcher import (
    Batch,
    ListSubscription,
    StreamLimit,
    Subscription,
    WatcherDep,
)
from shared.models import JobStatus

router = APIRouter(tags=["jobs"], responses=AUTH_ERRORS)

RETRY_MS = 2000
KEEPALIVE_S = 15.0
FULL_RETRY_AFTER_S = 10
Progress = tuple[str, int, int | None]  # status, chunks done, chunks in all: what events report
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _stream_doc(description: str, names: list[str]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "text/event-stream": {
                # One event (the SSE fields): `data` is the job as JSON (JobOut).
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "event": {"type": "string", "enum": names},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    }


NAMES = ["status", "progress", "completed", "failed", "deleted"]
TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorOut,
        "description": "Too many requests this minute, or this key (this address, when the "
        "API is open) already has `VTX_MAX_EVENT_STREAMS` event streams open; Retry-After "
        "says when to try again.",
        "headers": AUTH_ERRORS[429]["headers"],
    },
}
EVENTS: dict[int | str, dict[str, Any]] = {
    200: _stream_doc(
        "An event stream: `status`/`progress` events, then `completed` or `failed`; each "
        "`data:` line is the job as JSON.",
        NAMES,
    ),
    **TOO_MANY,
    **NOT_FOUND,
}
LIST_EVENTS: dict[int | str, dict[str, Any]] = {
    200: _stream_doc(
        "An event stream of every unfinished job of the caller: one `status` event per job, "
        'then `ready` (data `{"unfinished": n}`: the first state of each was sent), then '
        "`status`/`progress` events as jobs change (jobs started later too) and `completed`, "
        '`failed` or `deleted` (data `{"id": ..., "status": "deleted"}`) as each '
        "ends. Each `data:` line is the job as JSON. The stream stays open until its "
        "lifetime (`VTX_EVENT_STREAM_MAX_S`) ends; the client then reconnects.",
        [*NAMES, "ready"],
    ),
    **TOO_MANY,
}


class EventStream(StreamingResponse):
    """An event stream that gives its watcher slot back however it ends: finished,
    client gone (the server cancels it), lifetime over or an error."""

    def __init__(
        self, subscription: Subscription | ListSubscription, content: AsyncIterator[str]
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=HEADERS)
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.subscription.close()


@router.get(
    "/v1/jobs/{job_id}/events",
    summary="Follow a job: Server-Sent Events until it ends",
    response_class=StreamingResponse,
    responses=EVENTS,
)
async def job_events(
    request: Request, res: ResourcesDep, watcher: WatcherDep, caller: CallerDep, job_id: JobId
) -> StreamingResponse:
    # Not SessionDep: its session would hold a pooled connection for the stream's life.
    async with res.sessions() as session:
        await job_or_404(session, job_id, caller)
    try:
        subscription = watcher.subscribe(job_id, holder(request, caller))
    except StreamLimit as exc:
        raise _full(caller, exc, f"GET /v1/jobs/{job_id}") from exc
    lifetime_s = res.settings.event_stream_max_s
    return EventStream(subscription, _stream(request, caller, subscription, lifetime_s))


@router.get(
    "/v1/events",
    summary="Follow all your unfinished jobs: Server-Sent Events on one connection",
    response_class=StreamingResponse,
    responses=LIST_EVENTS,
)
async def list_events(
    request: Request, res: ResourcesDep, watcher: WatcherDep, caller: CallerDep
) -> StreamingResponse:
    try:
        subscription = watcher.subscribe_list(caller.key_id, holder(request, caller))
    except StreamLimit as exc:
        raise _full(caller, exc, "GET /v1/jobs") from exc
    lifetime_s = res.settings.event_stream_max_s
    return EventStream(subscription, _list_stream(request, caller, subscription, lifetime_s))


def _full(caller: Caller, exc: StreamLimit, instead: str) -> QuotaExceeded:
    who = "This key has" if caller.key_id else "This address has"
    return too_many(
        f"{who} {exc.limit} event streams open, the most allowed at once "
        f"(VTX_MAX_EVENT_STREAMS): close one, or poll {instead} instead.",
        FULL_RETRY_AFTER_S,
    )


def holder(request: Request, caller: Caller) -> str:
    """Whose slots a stream takes: the key's, or the client address's when the API is open."""
    if caller.key_id is not None:
        return f"key:{caller.key_id}"
    return f"address:{request.client.host if request.client else 'unknown'}"


def event(name: str, number: int, job: JobOut) -> str:
    return f"id: {number}\nevent: {name}\ndata: {job.model_dump_json()}\n\n"


def event_name(status: str, before: str | None) -> str:
    """`completed`/`failed` when the job ended, `status` when its status changed (or is
    the first said), `progress` otherwise."""
    if JobStatus(status).finished:
        return status
    return "status" if before != status else "progress"


class Pace:
    """When a stream ends (its lifetime) and when it owes its client a keep-alive (after
    KEEPALIVE_S without a word), for both kinds of stream."""

    def __init__(self, lifetime_s: float) -> None:
        self.quiet_since = time.monotonic()
        self.deadline = self.quiet_since + lifetime_s

    def wait_s(self) -> float | None:
        """How long to wait for the next state; None once the lifetime is over."""
        now = time.monotonic()
        if now >= self.deadline:
            return None
        return min(self.deadline, self.quiet_since + KEEPALIVE_S) - now

    def keep_alive(self) -> str | None:
        """The keep-alive comment, if the stream has been quiet long enough."""
        if time.monotonic() - self.quiet_since < KEEPALIVE_S:
            return None
        self.spoke()
        return ": keep-alive\n\n"

    def spoke(self) -> None:
        self.quiet_since = time.monotonic()


async def _stream(
    request: Request, caller: Caller, subscription: Subscription, lifetime_s: float
) -> AsyncIterator[str]:
    """The events of one job from the watcher's states, until it ends or the lifetime does."""
    number, last = 0, None
    pace = Pace(lifetime_s)
    yield f"retry: {RETRY_MS}\n\n"
    while (wait_s := pace.wait_s()) is not None:
        state = await subscription.next(wait_s)
        if state is None:
            if alive := pace.keep_alive():
                yield alive
            continue
        if state.job is None:
            yield 'event: deleted\ndata: {"status": "deleted"}\n\n'
            return
        job = job_out(request, state.job, state.done, caller, list(state.deliveries))
        seen = (job.status, job.progress.chunks_done, job.progress.chunks_total)
        if seen == last:
            continue  # a callback attempt changed, not what the stream reports
        number += 1
        yield event(event_name(job.status, last[0] if last else None), number, job)
        last = seen
        pace.spoke()
        if JobStatus(job.status).finished:
            return


async def _list_stream(
    request: Request, caller: Caller, subscription: ListSubscription, lifetime_s: float
) -> AsyncIterator[str]:
    """The events of every job the list subscription sees, until the lifetime ends."""
    number, seen = 0, dict[str, Progress]()
    pace = Pace(lifetime_s)
    yield f"retry: {RETRY_MS}\n\n"
    while (wait_s := pace.wait_s()) is not None:
        batch = await subscription.next(wait_s)
        if batch is None:
            if alive := pace.keep_alive():
                yield alive
            continue
        for text in _batch_events(request, caller, batch, seen):
            number += 1
            yield f"id: {number}\n{text}"
        if batch.snapshot:
            yield f"event: ready\ndata: {json.dumps({'unfinished': len(seen)})}\n\n"
        pace.spoke()


def _batch_events(
    request: Request, caller: Caller, batch: Batch, seen: dict[str, Progress]
) -> Iterator[str]:
    """An event (without its id line) per job whose status or progress moved; `seen`
    holds what this stream last said of each job it follows and forgets those that ended."""
    for state in batch.states:
        if state.job is None:
            if seen.pop(state.job_id, None) is not None:
                data = json.dumps({"id": state.job_id, "status": "deleted"})
                yield f"event: deleted\ndata: {data}\n\n"
            continue
        job = job_out(request, state.job, state.done, caller, list(state.deliveries))
        now = (job.status, job.progress.chunks_done, job.progress.chunks_total)
        last = seen.get(job.id)
        if now == last:
            continue
        name = event_name(job.status, last[0] if last else None)
        if JobStatus(job.status).finished:
            seen.pop(job.id, None)
        else:
            seen[job.id] = now
        yield f"event: {name}\ndata: {job.model_dump_json()}\n\n"
