"""`vtx db ...`: migrations against the configured database."""

from __future__ import annotations

import asyncio

from shared import db, migrate
from shared.config import Settings


def run(action: str, revision: str = "head") -> str:
    return asyncio.run(_run(Settings(), action, revision))


async def _run(settings: Settings, action: str, revision: str) -> str:
    engine = db.create_engine(settings)
    try:
        if action == "upgrade":
            await migrate.upgrade(engine, revision)
        elif action == "downgrade":
            await migrate.downgrade(engine, revision)
        found = await migrate.current(engine)
    finally:
        await engine.dispose()
    return f"database revision: {found or 'none'} (this code needs {migrate.head()})"
