"""Alembic migrations on the test's database backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect

from shared import db, migrate
from shared.config import Settings
from shared.runtime import open_resources
from tests.databases import BACKEND


async def tables(settings: Settings) -> set[str]:
    engine = db.create_engine(settings)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_downgrade_and_no_drift(settings: Settings) -> None:
    engine = db.create_engine(settings)
    try:
        assert await migrate.current(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current(engine) == await asyncio.to_thread(migrate.head)
        await migrate.check(engine)  # the models and the newest migration agree
        await migrate.downgrade(engine, "base")
        assert await migrate.current(engine) is None
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    assert {"job", "chunk", "transcript"} <= await tables(settings)


async def test_services_refuse_a_database_that_is_behind(settings: Settings) -> None:
    with pytest.raises(migrate.SchemaBehind, match="Run `vtx db upgrade` first"):
        async with open_resources(settings):
            pass


@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite is one machine's: vtx up migrates once")
async def test_concurrent_upgrades_migrate_once(settings: Settings) -> None:
    """Every pod of a release upgrades before it serves; on PostgreSQL they queue behind
    one advisory lock instead of racing to create the same tables."""
    engines = [db.create_engine(settings) for _ in range(4)]
    try:
        await asyncio.wait_for(asyncio.gather(*(migrate.upgrade(e) for e in engines)), 120)
        assert await migrate.current(engines[0]) == await asyncio.to_thread(migrate.head)
    finally:
        for engine in engines:
            await engine.dispose()
