"""The store's playback API, `size` and `read_range`, on local disk and on a remote
kind of store (obstore's in-memory one stands in for S3: the same ranged GETs)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import obstore
import pytest

from shared.store import READ_PART, Store

BODY = bytes(range(256)) * (READ_PART // 64)  # four read parts and more


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = (tmp_path / "store").as_uri() if request.param == "file" else "memory://"
    return Store(url, tmp_path / "scratch")


async def test_size_is_none_for_a_missing_object(store: Store) -> None:
    await store.put_bytes("media/a", BODY)
    assert await store.size("media/a") == len(BODY)
    assert await store.size("media/missing") is None


@pytest.mark.parametrize(("start", "length"), [(0, len(BODY)), (7, 1), (READ_PART - 3, 9)])
async def test_read_range_gives_exactly_the_bytes_asked(
    store: Store, start: int, length: int
) -> None:
    await store.put_bytes("media/a", BODY)
    parts = [part async for part in store.read_range("media/a", start, length)]
    assert b"".join(parts) == BODY[start : start + length]


async def test_delete_prefix_deletes_the_rest_when_another_deleter_got_there_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway cancelling a job and its splitter abandoning the split both delete the
    chunks: an object gone between the listing and the delete is no error."""
    for name in ("00000", "00001", "00002"):
        await store.put_bytes(f"chunks/j/{name}.pcm", b"pcm")
    await store.put_bytes("chunks/other/00000.pcm", b"pcm")
    listing = obstore.list

    def listed_then_one_gone(*args: Any, **kwargs: Any) -> Any:
        found = listing(*args, **kwargs)
        asyncio.get_running_loop().create_task(store.delete("chunks/j/00001.pcm"))
        return found

    monkeypatch.setattr(obstore, "list", listed_then_one_gone)
    await store.delete_prefix("chunks/j/")
    monkeypatch.undo()
    for name in ("00000", "00001", "00002"):
        assert await store.size(f"chunks/j/{name}.pcm") is None
    assert await store.size("chunks/other/00000.pcm") == 3
