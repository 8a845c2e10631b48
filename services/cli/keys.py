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
from shared.models import ApiKey, aware

T = TypeVar("T")

console = Console()


def create(name: str, as_json: bool, audio_hours: float | None, storage_gb: float | None) -> int:
    made = asyncio.run(_create(Settings(), name, audio_hours, storage_gb))
    row = made.row
    if as_json:
        print(json.dumps({**_facts(row), "key": made.key, "webhook_secret": row.webhook_secret}))
    else:
        console.print(f"created key [bold]{row.id}[/bold] ({row.name})")
        console.print(
            f"audio hours in flight: {_quota(row.quota_audio_hours)}, "
            f"storage GB: {_quota(row.quota_storage_gb)}"
        )
        console.print("the key (shown only this once):")
        print(made.key)
        console.print(
            "its webhook secret, which signs this key's callbacks (shown only this once):"
        )
        print(row.webhook_secret)
    return 0


def listing(as_json: bool) -> int:
    rows = asyncio.run(_list(Settings()))
    if as_json:
        print(json.dumps([_facts(r) for r in rows]))
        return 0
    table = Table(title="API keys")
    for column in ("id", "name", "prefix", "created", "revoked", "audio hours", "storage GB"):
        table.add_column(column)
    for r in rows:
        revoked = aware(r.revoked_at).isoformat(timespec="seconds") if r.revoked_at else ""
        table.add_row(
            r.id,
            r.name,
            r.prefix,
            aware(r.created_at).isoformat(timespec="seconds"),
            revoked,
            _quota(r.quota_audio_hours),
            _quota(r.quota_storage_gb),
        )
    console.print(table)
    return 0


def _facts(row: ApiKey) -> dict[str, object]:
    """What may be shown of a key any time: never the key or its webhook secret."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": aware(row.created_at).isoformat(),
        "revoked_at": aware(row.revoked_at).isoformat() if row.revoked_at else None,
        "quota_audio_hours": row.quota_audio_hours,
        "quota_storage_gb": row.quota_storage_gb,
    }


def _quota(value: float | None) -> str:
    """An override as the operator gave it; None follows the server's VTX_QUOTA_* setting."""
    if value is None:
        return "default"
    return "unlimited" if value == 0 else f"{value:g}"


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


async def _create(
    settings: Settings, name: str, audio_hours: float | None, storage_gb: float | None
) -> apikeys.NewKey:
    return await _session_run(settings, lambda s: apikeys.create(s, name, audio_hours, storage_gb))


async def _list(settings: Settings) -> list[ApiKey]:
    return await _session_run(settings, apikeys.listing)


async def _revoke(settings: Settings, id_or_prefix: str) -> list[ApiKey]:
    return await _session_run(settings, lambda s: apikeys.revoke(s, id_or_prefix))
