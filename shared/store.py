"""Object store for media and chunks: a local folder by default, S3/GCS/Azure by URL.

Keys are always chosen by the server (`media/<job id>`, `chunks/<job id>/<n>.pcm`),
never taken from a client's file name. Every local file operation runs in a worker
thread (anyio), so callers on an event loop never wait on the disk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import anyio
import obstore
from obstore.store import LocalStore, from_url

from shared.files import remove

READ_PART = 1024 * 1024


def media_key(job_id: str) -> str:
    return f"media/{job_id}"


def chunk_key(job_id: str, index: int) -> str:
    return f"chunks/{job_id}/{index:05d}.pcm"


def chunk_prefix(job_id: str) -> str:
    return f"chunks/{job_id}/"


class Store:
    """The few operations the suite needs, with a zero-copy path for a local folder."""

    def __init__(self, url: str, scratch_dir: Path) -> None:
        parsed = urlparse(url)
        self.url = url
        self._scratch = scratch_dir
        self.root: Path | None = None
        if parsed.scheme == "file":
            self.root = Path(unquote(parsed.path))
            self.root.mkdir(parents=True, exist_ok=True)
            self._store: obstore.store.ObjectStore = LocalStore(self.root)
        else:
            self._store = from_url(url)

    def _local(self, key: str) -> Path | None:
        return self.root / key if self.root is not None else None

    async def put_file(self, key: str, source: Path) -> None:
        """Move a spooled file into the store: a rename when both are on local disk."""
        target = self._local(key)
        if target is not None:
            await anyio.to_thread.run_sync(_move, source, target)
            return
        await obstore.put_async(self._store, key, source)
        await remove(source)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await obstore.put_async(self._store, key, data)

    async def get_bytes(self, key: str) -> bytes:
        result = await obstore.get_async(self._store, key)
        return bytes(await result.bytes_async())

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, None when nothing is stored under `key`: a stat on
        local disk (no listing), a HEAD elsewhere. With `read_range`, what playback needs."""
        local = self._local(key)
        try:
            if local is not None:
                return (await anyio.Path(local).stat()).st_size
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
        return int(meta["size"])

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        """A path PyAV can open: the stored file itself, or a temporary download of it."""
        local = self._local(key)
        if local is not None:
            yield local
            return
        path = await anyio.to_thread.run_sync(_scratch_file, self._scratch)
        try:
            result = await obstore.get_async(self._store, key)
            async with await anyio.open_file(path, "wb") as out:
                async for part in result:
                    await out.write(part)
            yield path
        finally:
            await remove(path)

    async def read_range(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Stream `length` bytes from `start`: from the file itself, or by ranged GETs."""
        local = self._local(key)
        if local is not None:
            async with await anyio.open_file(local, "rb") as handle:
                await handle.seek(start)
                left = length
                while left > 0 and (part := await handle.read(min(READ_PART, left))):
                    left -= len(part)
                    yield part
            return
        position, end = start, start + length
        while position < end:
            stop = min(position + 4 * READ_PART, end)
            yield bytes(await obstore.get_range_async(self._store, key, start=position, end=stop))
            position = stop

    async def delete(self, *keys: str) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                await obstore.delete_async(self._store, key)

    async def delete_prefix(self, prefix: str) -> None:
        """Delete what is under `prefix`; what another deleter removed since the listing
        counts as deleted (a cancelled job's chunks go from the gateway and its splitter
        at once), and the rest is still deleted, one by one."""
        objects = await obstore.list(self._store, prefix=prefix).collect_async()
        paths = [obj["path"] for obj in objects]
        if not paths:
            return
        try:
            await obstore.delete_async(self._store, paths)
        except FileNotFoundError:
            await self.delete(*paths)

    async def ping(self) -> None:
        await obstore.list(self._store, prefix="__ping__").collect_async()


def _move(source: Path, target: Path) -> None:
    """Into the local store: a rename on one file system (blocks: run it in a thread)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)


def _scratch_file(scratch: Path) -> Path:
    """A new, empty file for a download (blocks: run it in a thread)."""
    scratch.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=scratch)
    os.close(fd)
    return Path(name)
