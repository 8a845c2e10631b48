"""Health service: the aggregator of the whole suite, and the exporter of its gauges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from services.health.aggregate import detailed
from shared.config import Settings
from shared.runtime import Resources, open_resources
from shared.service import resources_of, service_app

log = structlog.get_logger(__name__)
REFRESH_S = 5.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.health_timeout_s)
        async with open_resources(settings) as res, httpx.AsyncClient(timeout=timeout) as client:
            app.state.resources = res
            app.state.client = client
            refresher = asyncio.create_task(_refresh(res, client))
            try:
                yield
            finally:
                refresher.cancel()
                await asyncio.gather(refresher, return_exceptions=True)

    app = service_app("health", settings, lifespan)
    app.include_router(router)
    return app


router = APIRouter(tags=["health"])


@router.get("/health/detailed", summary="Every service, dependency, queue and worker")
async def health_detailed(request: Request) -> JSONResponse:
    """200 while the suite accepts work (`ok` or `degraded`), 503 when it is `down`."""
    document = await detailed(resources_of(request), request.app.state.client)
    return JSONResponse(document, status_code=503 if document["status"] == "down" else 200)


async def _refresh(res: Resources, client: httpx.AsyncClient) -> None:
    """Keep the gauges fresh for scrapes even when nobody asks for the document."""
    while True:
        document: dict[str, Any] = {}
        try:
            document = await detailed(res, client)
        except Exception as exc:
            log.warning("health.refresh_failed", error=repr(exc))
        if document.get("status") not in (None, "ok"):
            log.info("health.status", status=document["status"])
        await asyncio.sleep(REFRESH_S)
