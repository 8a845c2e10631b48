"""Transcriber service: loads the model once, then runs its arq worker beside the probes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request

from services.transcriber.batching import Gatherer
from services.transcriber.engine import Engine, WhisperEngine, layout
from services.transcriber.worker import transcriber_worker
from shared.config import Settings
from shared.health import Check
from shared.runtime import open_resources
from shared.service import resources_of, service_app
from shared.threads import thread_pool
from shared.worker import running


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    plan = layout(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded: Engine = (
            engine
            if engine is not None
            else await anyio.to_thread.run_sync(WhisperEngine, settings, plan)
        )
        app.state.engine = loaded
        async with (
            thread_pool(plan.workers, "whisper") as executor,
            open_resources(settings) as res,
        ):
            app.state.resources = res
            gatherer = Gatherer(loaded, executor, plan.batch_size, settings.batch_wait_ms)
            extra = {"engine": loaded, "executor": executor, "layout": plan, "gatherer": gatherer}
            async with (
                gatherer.running(),
                running(res, "transcriber", lambda ctx: transcriber_worker(res, ctx), extra),
            ):
                yield

    def checks(request: Request) -> Mapping[str, Check]:
        async def model() -> None:
            if getattr(request.app.state, "engine", None) is None:
                raise RuntimeError("model not loaded")

        return {**resources_of(request).checks(), "model": model}

    def info(request: Request) -> Mapping[str, Any]:
        loaded: Engine | None = getattr(request.app.state, "engine", None)
        if loaded is None:
            return {"model": settings.model, "loaded": False}
        return {"model": loaded.name, "loaded": True, **dataclasses.asdict(plan)}

    return service_app("transcriber", settings, lifespan, checks, info)
