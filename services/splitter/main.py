"""Splitter service: probes, decodes and cuts media; its arq worker runs in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from services.splitter.worker import splitter_worker
from shared.config import Settings
from shared.machine import available_cores
from shared.runtime import open_resources
from shared.service import service_app
from shared.worker import running


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as res:
            app.state.resources = res
            cores = await anyio.to_thread.run_sync(available_cores)  # reads the cgroup's quota
            async with running(res, "splitter", lambda ctx: splitter_worker(res, ctx, cores)):
                yield

    return service_app("splitter", settings, lifespan)
