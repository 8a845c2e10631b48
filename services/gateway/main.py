"""Gateway service: the public API under /v1."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import structlog
from fastapi import FastAPI, Request, Response

from services.gateway import errors
from services.gateway.api.routes import audio, events, jobs, media, usage, web
from services.gateway.deliveries import delivering
from services.gateway.exposure import ensure_protected
from services.gateway.hosts import HostGuard
from services.gateway.speakers import SpeakersWorkers
from services.gateway.waiting import EndWaiter
from services.gateway.watcher import EventWatcher
from shared.config import Settings
from shared.runtime import open_resources
from shared.secrets import load_secret
from shared.service import service_app

REQUEST_ID = "X-Request-ID"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.Path(settings.uploads_dir).mkdir(parents=True, exist_ok=True)
        app.state.media_secret = await load_secret(settings, "media")
        async with open_resources(settings) as res:
            await ensure_protected(settings, res.sessions)  # before anything is served
            app.state.resources = res
            async with (
                delivering(res),
                EventWatcher(res.sessions, settings.max_event_streams) as watcher,
                EndWaiter(res.sessions) as waiter,
            ):
                app.state.event_watcher = watcher
                app.state.end_waiter = waiter
                yield

    app = service_app(
        "gateway",
        settings,
        lifespan,
        description="Upload audio or video, follow its progress, fetch its transcript.",
    )
    app.state.speakers_workers = SpeakersWorkers()
    app.middleware("http")(request_id)
    app.add_middleware(HostGuard, allowed_hosts=settings.allowed_hosts)
    errors.install(app)
    app.include_router(jobs.router)
    app.include_router(events.router)
    app.include_router(media.router)
    app.include_router(audio.router)
    app.include_router(usage.router)
    app.include_router(web.router)
    return app


async def request_id(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Take the caller's X-Request-ID or make one; it travels with the job to every worker."""
    rid = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
    request.state.request_id = rid[:64]
    structlog.contextvars.bind_contextvars(request_id=request.state.request_id)
    try:
        response = await call_next(request)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    response.headers[REQUEST_ID] = request.state.request_id
    return response
