"""File work for code on an event loop: done in a worker thread, never on the loop."""

from __future__ import annotations

from pathlib import Path

import anyio


async def remove(path: Path) -> None:
    """Delete a file if it exists; shielded, so a cancelled request still cleans up."""
    with anyio.CancelScope(shield=True):
        await anyio.Path(path).unlink(missing_ok=True)
