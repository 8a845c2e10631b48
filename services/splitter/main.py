"""Splitter service: probes, decodes and cuts media; its arq worker runs in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.splitter.worker import splitter_worker
from shared.config import Settings
from shared.runtime import open_resources
from shared.service import service_app
from shared.worker import running


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as res:
            app.state.resources = res
            async with running(res, "splitter", lambda ctx: splitter_worker(res, ctx)):
                yield

    return service_app("splitter", settings, lifespan)
