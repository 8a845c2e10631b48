"""Schema migrations with Alembic, run over the suite's own async engine.

`vtx db upgrade` applies them; every service checks at start-up that the database
is at the newest revision and refuses to run on an older one.
"""

from __future__ import annotations

from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# The PostgreSQL advisory lock that serialises concurrent upgrades (any constant, ours alone).
MIGRATION_LOCK = 0x76_74_78_6D_69_67  # "vtxmig"


class SchemaBehind(RuntimeError):
    """The database is older than this code; the message says what to run."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


async def upgrade_database(settings: Settings) -> None:
    """`vtx db upgrade` for a database given by settings (its own short-lived engine)."""
    engine = db.create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate; on PostgreSQL under a transaction-scoped advisory lock, because replicas
    that start together (every pod of a Helm release runs `vtx db upgrade` before it
    serves) would otherwise race to create the same tables. The one that waited finds
    the schema current and does nothing."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def check(engine: AsyncEngine) -> None:
    """Raise if the models and the newest migration disagree (alembic check)."""
    async with engine.connect() as conn:
        await conn.run_sync(lambda c: command.check(alembic_config(c)))


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def ensure_current(engine: AsyncEngine) -> None:
    """Refuse to serve on a database whose schema is older (or newer) than this code."""
    found = await current(engine)
    wanted = await anyio.to_thread.run_sync(head)  # alembic reads its script files
    if found != wanted:
        raise SchemaBehind(
            f"The database schema is at revision {found or 'none (empty database)'}, "
            f"this version of vtx needs {wanted}. Run `vtx db upgrade` first."
        )
