"""Thread pools for code on an event loop: shutting one down joins its threads, which
would hold the loop until a running task ends; here that wait happens in a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import anyio


@asynccontextmanager
async def thread_pool(workers: int, prefix: str) -> AsyncIterator[ThreadPoolExecutor]:
    """`with ThreadPoolExecutor(...)` for an async caller."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix=prefix)
    try:
        yield pool
    finally:
        await anyio.to_thread.run_sync(pool.shutdown)
