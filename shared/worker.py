"""Running an arq worker inside a service's own event loop (one pod: probes + work).

The worker is supervised (a Redis outage restarts it with backoff instead of
leaving a process that answers probes but does nothing), runs beside the
reconciler, and shuts down gracefully: on exit it stops taking work, gives
running jobs `shutdown_grace_s` to finish, then cancels the rest, which stay
queued and whose leases are released for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker

from shared import reconciler
from shared.config import Settings
from shared.leases import worker_identity
from shared.queue import deserialize, redis_settings, serialize
from shared.runtime import Resources

log = structlog.get_logger(__name__)


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
        # The database counts real attempts (leases); arq's own count only backs it up.
        max_tries=settings.max_tries + 2,
        keep_result=0,
        poll_delay=0.1,
        handle_signals=False,
        job_serializer=serialize,
        job_deserializer=deserialize,
    )


class Supervised:
    """Keeps one arq worker running, building a new one after a failure."""

    def __init__(self, factory: Callable[[], Worker]) -> None:
        self._factory = factory
        self.worker: Worker | None = None

    async def run(self) -> None:
        delay = 0.5
        while True:
            self.worker = self._factory()
            try:
                await self.worker.async_run()
                return
            except Exception as exc:
                log.warning("worker.restarting", error=repr(exc), in_seconds=delay)
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await self.worker.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def stop(self, grace_s: float) -> None:
        worker = self.worker
        if worker is None:
            return
        if worker.main_task is not None:
            worker.main_task.cancel()  # no new jobs from here on
        running = [t for t in worker.tasks.values() if not t.done()]
        if running:
            log.info("worker.draining", jobs=len(running), grace_s=grace_s)
            await asyncio.wait(running, timeout=grace_s)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await worker.close()


@asynccontextmanager
async def running(
    res: Resources, build: Callable[[dict[str, Any]], Worker], extra: dict[str, Any] | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Run the worker and the reconciler beside the HTTP server; yields the tasks' ctx."""
    ctx: dict[str, Any] = {"resources": res, "worker_id": worker_identity(), **(extra or {})}
    supervised = Supervised(lambda: build(ctx))
    tasks = [
        asyncio.create_task(supervised.run(), name="arq-worker"),
        asyncio.create_task(reconciler.run_forever(res), name="reconciler"),
    ]
    try:
        yield ctx
    finally:
        tasks[1].cancel()
        await supervised.stop(res.settings.shutdown_grace_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
