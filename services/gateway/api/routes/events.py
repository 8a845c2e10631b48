"""`/v1/jobs/{id}/events`: Server-Sent Events of a job's status and progress.

Each event's data is the job as `GET /v1/jobs/{id}` returns it (what the web page
expects); one is sent at once, then one whenever status or progress changes, and
the stream closes after the `completed` or `failed` event. Comments keep idle
connections alive through proxies. The database is polled (the source of truth,
whichever worker made the change), cheaply: one job and one progress query a tick.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.gateway.api.routes.jobs import NOT_FOUND, job_or_404
from services.gateway.api.routes.media import JobId
from services.gateway.auth import Caller, CallerDep
from services.gateway.deps import ResourcesDep, SessionDep
from services.gateway.errors import AUTH_ERRORS
from services.gateway.schemas import JobOut
from services.gateway.views import Done, deliveries_by_job, done_by_job, job_out
from shared.models import Job, JobStatus
from shared.runtime import Resources

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=AUTH_ERRORS)

TICK_S = 0.5
KEEPALIVE_S = 15.0

EVENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An event stream: `status`/`progress` events, then `completed` or "
        "`failed`; each `data:` line is the job as JSON.",
        "content": {
            "text/event-stream": {
                # One event (the SSE fields): `data` is the job as JSON (JobOut).
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "event": {
                            "type": "string",
                            "enum": ["status", "progress", "completed", "failed", "deleted"],
                        },
                        "data": {"type": "string", "contentMediaType": "application/json"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    },
    **NOT_FOUND,
}


@router.get(
    "/{job_id}/events",
    summary="Follow a job: Server-Sent Events until it ends",
    response_class=StreamingResponse,
    responses=EVENTS,
)
async def job_events(
    request: Request, session: SessionDep, res: ResourcesDep, caller: CallerDep, job_id: JobId
) -> StreamingResponse:
    await job_or_404(session, job_id, caller)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _stream(request, res, caller, job_id), media_type="text/event-stream", headers=headers
    )


def event(name: str, number: int, job: JobOut) -> str:
    return f"id: {number}\nevent: {name}\ndata: {job.model_dump_json()}\n\n"


async def _snapshot(request: Request, res: Resources, caller: Caller, job_id: str) -> JobOut | None:
    async with res.sessions() as session:
        job = await session.get(Job, job_id)
        if job is None:
            return None
        done = await done_by_job(session, [job_id])
        calls = await deliveries_by_job(session, [job_id])
        return job_out(request, job, done.get(job_id, Done()), caller, calls.get(job_id, []))


async def _stream(
    request: Request, res: Resources, caller: Caller, job_id: str
) -> AsyncIterator[str]:
    number, last, quiet_since = 0, None, time.monotonic()
    yield f"retry: {int(TICK_S * 4000)}\n\n"
    while not await request.is_disconnected():
        job = await _snapshot(request, res, caller, job_id)
        if job is None:
            yield 'event: deleted\ndata: {"status": "deleted"}\n\n'
            return
        seen = (job.status, job.progress.chunks_done, job.progress.chunks_total)
        if seen != last:
            number += 1
            ended = JobStatus(job.status).finished
            name = (
                job.status
                if ended
                else ("status" if not last or last[0] != seen[0] else "progress")
            )
            yield event(name, number, job)
            last, quiet_since = seen, time.monotonic()
            if ended:
                return
        elif time.monotonic() - quiet_since > KEEPALIVE_S:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(TICK_S)
