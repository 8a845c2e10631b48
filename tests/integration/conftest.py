"""Integration fixtures: real Redis, SQLite in a temp folder, the real tiny.en model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.main import create_app
from services.transcriber.engine import Layout, WhisperEngine, layout
from shared import migrate
from shared.blocking import detecting
from shared.config import Settings
from shared.runtime import Resources, open_resources
from tests.conftest import RedisServer


@pytest.fixture(autouse=True)
def no_blocking() -> Iterator[None]:
    """Every in-process test runs under the detector: a blocking call on the loop from
    the suite's code fails the test (shared/blocking.py holds the reviewed allow-list)."""
    with detecting():
        yield


@pytest.fixture
def settings(tmp_path: Path, redis_server: RedisServer, database_url: str | None) -> Settings:
    redis_server.flush()
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=redis_server.url,
        transcriber_workers=2,
        chunk_seconds=10,
        log_format="console",
    )


@pytest.fixture
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    await migrated(settings)
    async with open_resources(settings) as res:
        yield res


async def migrated(settings: Settings) -> None:
    """What `vtx db upgrade` does before any service starts."""
    await migrate.upgrade_database(settings)


@pytest.fixture(scope="session")
def plan() -> Layout:
    return layout(Settings(transcriber_processes=1, transcriber_workers=2))


@pytest.fixture(scope="session")
def engine(plan: Layout) -> WhisperEngine:
    return WhisperEngine(Settings(), plan)


@pytest.fixture(scope="session")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


@pytest.fixture
def ctx(
    resources: Resources, engine: WhisperEngine, executor: ThreadPoolExecutor, plan: Layout
) -> dict[str, Any]:
    return {
        "resources": resources,
        "engine": engine,
        "executor": executor,
        "layout": plan,
        "worker_id": "test-worker-a",
    }


Gateway = tuple[FastAPI, httpx.AsyncClient]


@asynccontextmanager
async def gateway_for(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway app in process (no workers), on a migrated database, and a client."""
    await migrated(settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield app, client


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    async with gateway_for(settings) as pair:
        yield pair
