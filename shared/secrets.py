"""Server-side secrets (media links, callback signatures): a setting, else a file.

A setting is what a cluster uses (every replica must sign alike). On one machine,
`vtx up` needs no set-up: the first process to ask creates a random secret under
`data_dir/secrets/` (mode 0600, created exclusively so racing processes agree).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Literal

import anyio

from shared.config import Settings

Name = Literal["media", "webhook"]


def secret_path(settings: Settings, name: Name) -> Path:
    return settings.data_dir / "secrets" / name


async def load_secret(settings: Settings, name: Name) -> bytes:
    """`secret` for code on an event loop: the file (and its retry's sleep) in a thread."""
    return await anyio.to_thread.run_sync(secret, settings, name)


def secret(settings: Settings, name: Name) -> bytes:
    """Blocks (file I/O, a short retry): call it from a thread, or use `load_secret`."""
    configured = settings.secret_key if name == "media" else settings.webhook_secret
    if configured is not None:
        return configured.get_secret_value().encode()
    path = secret_path(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32))
    return _read(path)


def _read(path: Path) -> bytes:
    """Another process may be writing it this very moment: wait for its content."""
    for _ in range(50):
        value = path.read_text().strip()
        if value:
            return value.encode()
        time.sleep(0.02)
    raise RuntimeError(f"the secret file {path} is empty")
