"""Running an arq worker inside a service's own event loop (one pod: probes + work)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker

from shared.config import Settings
from shared.queue import deserialize, redis_settings, serialize


def create_worker(
    settings: Settings,
    functions: Sequence[WorkerCoroutine | Function],
    queue_name: str,
    ctx: dict[str, Any],
    max_jobs: int,
) -> Worker:
    return Worker(
        functions=functions,
        queue_name=queue_name,
        redis_settings=redis_settings(settings),
        ctx=ctx,
        max_jobs=max_jobs,
        job_timeout=settings.job_timeout_s,
        max_tries=settings.max_tries,
        keep_result=0,
        poll_delay=0.1,
        handle_signals=False,
        job_serializer=serialize,
        job_deserializer=deserialize,
    )


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Run the worker beside the HTTP server; on exit, running jobs are cancelled and
    stay queued, so another worker (or this one after a restart) picks them up."""
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
