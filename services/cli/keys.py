"""`vtx keys ...`: API keys, straight in the configured database (no server needed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console
from rich.table import Table
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import apikeys, db, migrate
from shared.config import Settings
from shared.models import aware

T = TypeVar("T")

console = Console()


def create(name: str, as_json: bool) -> int:
    made = asyncio.run(_create(Settings(), name))
    if as_json:
        print(json.dumps({"id": made.row.id, "name": made.row.name, "key": made.key}))
    else:
        console.print(f"created key [bold]{made.row.id}[/bold] ({made.row.name})")
        console.print("the key (shown only this once):")
        print(made.key)
    return 0


def listing(as_json: bool) -> int:
    rows = asyncio.run(_list(Settings()))
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "name": r.name,
                        "prefix": r.prefix,
                        "created_at": aware(r.created_at).isoformat(),
                        "revoked_at": aware(r.revoked_at).isoformat() if r.revoked_at else None,
                    }
                    for r in rows
                ]
            )
        )
        return 0
    table = Table(title="API keys")
    for column in ("id", "name", "prefix", "created", "revoked"):
        table.add_column(column)
    for r in rows:
        revoked = aware(r.revoked_at).isoformat(timespec="seconds") if r.revoked_at else ""
        table.add_row(
            r.id, r.name, r.prefix, aware(r.created_at).isoformat(timespec="seconds"), revoked
        )
    console.print(table)
    return 0


def revoke(id_or_prefix: str) -> int:
    try:
        rows = asyncio.run(_revoke(Settings(), id_or_prefix))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    if not rows:
        console.print(f"[red]no active key with id or prefix '{id_or_prefix}'[/red]")
        return 1
    console.print(f"revoked {rows[0].id} ({rows[0].name})")
    return 0


async def _session_run(settings: Settings, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    engine = db.create_engine(settings)
    try:
        await migrate.ensure_current(engine)
        async with db.session_factory(engine)() as session:
            return await action(session)
    finally:
        await engine.dispose()


async def _create(settings: Settings, name: str) -> apikeys.NewKey:
    return await _session_run(settings, lambda s: apikeys.create(s, name))


async def _list(settings: Settings) -> list[apikeys.ApiKey]:
    return await _session_run(settings, apikeys.listing)


async def _revoke(settings: Settings, id_or_prefix: str) -> list[apikeys.ApiKey]:
    return await _session_run(settings, lambda s: apikeys.revoke(s, id_or_prefix))
