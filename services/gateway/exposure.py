"""Refuse to serve an open API beyond loopback by accident.

With `VTX_AUTH=auto` and no key ever made, the API is open to whoever reaches it:
right for a laptop (127.0.0.1), wrong on a network. So binding any other address
in that state stops the gateway (and `vtx up`) before it serves, with what to do:
make a key, or choose `VTX_AUTH=off` (or `required`) on purpose.
"""

from __future__ import annotations

import asyncio
import ipaddress

import structlog

from shared import apikeys, db
from shared.config import Settings

log = structlog.get_logger(__name__)


class OpenBeyondLoopback(RuntimeError):
    """The API would be open to a network; the message says how to choose otherwise."""


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches only this machine: 127.0.0.0/8, ::1, localhost."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a name other than localhost: it may resolve to anything


def refusal(settings: Settings, key_made: bool) -> str | None:
    """Why serving with these settings would expose an open API, or None when it would not."""
    if settings.auth != "auto" or key_made or is_loopback(settings.host):
        return None
    return (
        f"VTX_HOST={settings.host} serves beyond this machine, and no API key exists, so "
        "the API would be open to anyone who can reach it. Create a key first "
        "(`vtx keys create NAME`), or choose on purpose: VTX_AUTH=required (keys always "
        "needed) or VTX_AUTH=off (open to everyone who can reach it)."
    )


async def ensure_protected(settings: Settings, sessions: db.SessionFactory) -> None:
    """Raise OpenBeyondLoopback where `refusal` says so (reads the keys only if it must)."""
    if refusal(settings, key_made=False) is None:
        return
    async with sessions() as session:
        message = refusal(settings, await apikeys.any_made(session))
    if message is not None:
        log.error("exposure.refused", reason=message)
        raise OpenBeyondLoopback(message)


def ensure_protected_before_start(settings: Settings) -> None:
    """`ensure_protected` on a connection of its own, for `vtx up` before any service
    starts (the database already migrated); raises OpenBeyondLoopback."""
    asyncio.run(_ensure_protected_once(settings))


async def _ensure_protected_once(settings: Settings) -> None:
    engine = db.create_engine(settings)
    try:
        await ensure_protected(settings, db.session_factory(engine))
    finally:
        await engine.dispose()
