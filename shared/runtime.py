"""What a service process holds open while it runs: DB, object store, queue connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

import anyio
from arq import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.config import Settings
from shared.health import Check
from shared.migrate import ensure_current
from shared.queue import open_queue
from shared.store import Store


@cache
def version() -> str:
    """Read from the package's metadata once (service_app does, at start-up): later
    calls, on a request's loop, touch no file."""
    try:
        return dist_version("vtx")
    except PackageNotFoundError:
        return "0.0.0+unknown"


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: db.SessionFactory
    store: Store
    queue: ArqRedis

    def checks(self) -> dict[str, Check]:
        async def redis() -> None:
            await self.queue.ping()

        return {
            "database": lambda: db.ping(self.engine),
            "redis": redis,
            "store": self.store.ping,
        }


def _store(settings: Settings) -> Store:
    """Blocks (resolves the local path, makes its folder): run it in a thread."""
    return Store(settings.resolved_store_url, settings.data_dir / "scratch")


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    engine = db.create_engine(settings)
    try:
        await ensure_current(engine)
    except BaseException:
        await engine.dispose()
        raise
    queue = await open_queue(settings)
    store = await anyio.to_thread.run_sync(_store, settings)
    try:
        yield Resources(settings, engine, db.session_factory(engine), store, queue)
    finally:
        await queue.aclose()
        await engine.dispose()
