"""Health service: for now its own probes; the aggregator of the whole suite grows here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shared.config import Settings
from shared.runtime import open_resources
from shared.service import service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as res:
            app.state.resources = res
            yield

    return service_app("health", settings, lifespan)
