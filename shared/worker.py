"""Running an arq worker inside a service's own event loop (one pod: probes + work).

The worker is supervised (a Redis outage restarts it with backoff instead of
leaving a process that answers probes but does nothing), runs beside the
reconciler, and shuts down gracefully through arq's own drain
(`handle_sig_wait_for_completion`, `job_completion_wait`): on exit it stops taking
work, gives running jobs `shutdown_grace_s` to finish, then cancels the rest, which
stay queued and whose leases are released for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker

from shared.config import Settings
from shared.metrics import WORKER_HEARTBEAT_FAILURES, WORKERS_BUSY
from shared.pipeline import reconciler
from shared.pipeline.contracts import log_context
from shared.pipeline.leases import worker_identity
from shared.queue import deserialize, redis_settings, serialize
from shared.runtime import Resources

log = structlog.get_logger(__name__)


WORKERS_KEY = "vtx:workers:"
HEARTBEAT_S = 5.0


@dataclass
class Activity:
    """What one worker process is doing, for its gauge and its heartbeat."""

    service: str
    worker_id: str
    max_jobs: int = 0
    busy: int = 0
    started_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        WORKERS_BUSY.labels(self.service).inc(0)  # present at 0 before the first task

    async def job_started(self, ctx: dict[Any, Any]) -> None:
        # Runs in the task arq runs the job in: its own log lines get the job's ids too.
        structlog.contextvars.bind_contextvars(**log_context(ctx.get("job_id", "")))
        self.busy += 1
        WORKERS_BUSY.labels(self.service).inc()

    async def job_ended(self, ctx: dict[Any, Any]) -> None:
        self.busy -= 1
        WORKERS_BUSY.labels(self.service).dec()

    @property
    def key(self) -> str:
        return f"{WORKERS_KEY}{self.service}:{self.worker_id}"

    def describe(self) -> str:
        return json.dumps(
            {
                "service": self.service,
                "worker_id": self.worker_id,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "busy": self.busy,
                "max_jobs": self.max_jobs,
                "started_at": self.started_at,
            }
        )


async def heartbeat(res: Resources, activity: Activity) -> None:
    """A key per live worker process, expiring unless renewed: the health service counts them.

    Every failed write is counted; an outage is logged once when it starts and once
    when it ends, not every few seconds while it lasts."""
    failing = False
    try:
        while True:
            failing = await _beat(res, activity, failing)
            await asyncio.sleep(HEARTBEAT_S)
    finally:
        try:
            await asyncio.shield(res.queue.delete(activity.key))
        except Exception as exc:  # the key expires on its own
            log.info("worker.heartbeat_key_left", error=repr(exc))


async def _beat(res: Resources, activity: Activity, failing: bool) -> bool:
    """Write the heartbeat once; True if it failed."""
    try:
        await res.queue.set(activity.key, activity.describe(), ex=int(HEARTBEAT_S * 3))
    except Exception as exc:
        WORKER_HEARTBEAT_FAILURES.labels(activity.service).inc()
        if not failing:
            log.warning("worker.heartbeat_failed", service=activity.service, error=repr(exc))
        return True
    if failing:
        log.info("worker.heartbeat_recovered", service=activity.service)
    return False


def create_worker(
    settings: Settings,
    functions: Sequence[WorkerCoroutine | Function],
    queue_name: str,
    ctx: dict[str, Any],
    max_jobs: int,
    job_timeout_s: int | None = None,
) -> Worker:
    """An arq worker for one service's queue; `job_timeout_s` defaults to the suite's
    `job_timeout_s`; the reconciler must know any other (reconciler._abandon_after)."""
    activity: Activity = ctx["activity"]
    activity.max_jobs = max_jobs
    return Worker(
        functions=functions,
        queue_name=queue_name,
        redis_settings=redis_settings(settings),
        ctx=ctx,
        max_jobs=max_jobs,
        job_timeout=job_timeout_s or settings.job_timeout_s,
        # The database counts real attempts (leases); arq's own count only backs it up.
        max_tries=settings.max_tries + 2,
        keep_result=0,
        poll_delay=0.05,
        handle_signals=False,
        job_completion_wait=math.ceil(settings.shutdown_grace_s),  # see Supervised.stop
        job_serializer=serialize,
        job_deserializer=deserialize,
        on_job_start=activity.job_started,
        on_job_end=activity.job_ended,
    )


class Supervised:
    """Keeps one arq worker running, building a new one after a failure, until `stop`."""

    def __init__(self, factory: Callable[[], Worker]) -> None:
        self._factory = factory
        self.worker: Worker | None = None
        self._stopping = asyncio.Event()
        self._ended = asyncio.Event()

    async def run(self) -> None:
        delay = 0.5
        try:
            while not self._stopping.is_set():
                self.worker = self._factory()
                try:
                    await self.worker.async_run()
                    return
                except asyncio.CancelledError:
                    if _cancelling() or not self._stopping.is_set():
                        raise
                    return  # arq ended its main task: the drain `stop` began is over
                except Exception as exc:
                    log.warning("worker.restarting", error=repr(exc), in_seconds=delay)
                    await _close(self.worker)
                await self._pause(delay)
                delay = min(delay * 2, 10.0)
        finally:
            self._ended.set()

    async def _pause(self, delay_s: float) -> None:
        """Wait before the next restart, or until `stop`, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_s)

    async def stop(self, grace_s: float) -> None:
        """Drain: take no new jobs, give running ones up to `grace_s` to finish, cancel the
        rest (arq keeps them queued).

        arq's own drain waits `job_completion_wait` (the worker's `shutdown_grace_s`);
        a shorter `grace_s` ends it sooner by closing the worker, which cancels."""
        self._stopping.set()
        worker = self.worker
        if worker is None:
            return
        log.info("worker.draining", grace_s=grace_s)
        worker.handle_sig_wait_for_completion(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), grace_s)
        await _close(worker)


def _cancelling() -> bool:
    """True if the running task itself is being cancelled (not merely a task it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _close(worker: Worker) -> None:
    """Close a worker, cancelling what it still runs; a cancellation of the caller goes on."""
    try:
        await worker.close()
    except asyncio.CancelledError:
        if _cancelling():
            raise
        log.info("worker.closed_with_cancelled_jobs")  # arq keeps them queued
    except Exception as exc:  # Redis is down: the worker's keys expire on their own
        log.warning("worker.close_failed", error=repr(exc))


@asynccontextmanager
async def running(
    res: Resources,
    service: str,
    build: Callable[[dict[str, Any]], Worker],
    extra: dict[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Run the worker, the reconciler and the heartbeat beside the HTTP server.

    Yields the ctx every task receives (resources, worker id, activity and `extra`)."""
    worker_id = worker_identity()
    activity = Activity(service, worker_id)
    ctx: dict[str, Any] = {
        "resources": res,
        "worker_id": worker_id,
        "activity": activity,
        **(extra or {}),
    }
    supervised = Supervised(lambda: build(ctx))
    tasks = [
        asyncio.create_task(supervised.run(), name="arq-worker"),
        asyncio.create_task(reconciler.run_forever(res), name="reconciler"),
        asyncio.create_task(heartbeat(res, activity), name="heartbeat"),
    ]
    try:
        yield ctx
    finally:
        tasks[1].cancel()
        await supervised.stop(res.settings.shutdown_grace_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
