"""The worker's own logic (shared/worker.py): the heartbeat says when it cannot beat,
and supervision never swallows a cancellation."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from arq.worker import Worker
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from shared import worker
from shared.runtime import Resources
from shared.worker import Activity, Supervised, heartbeat


class Recorder:
    """Stands in for the module's structlog logger: keeps the events it is given."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def _record(self, event: str, **_: Any) -> None:
        self.events.append(event)

    warning = info = error = _record


class FlakyQueue:
    """Redis as the heartbeat sees it: down for the first `failures` writes, then up."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.writes = 0

    async def set(self, key: str, value: str, ex: int) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RedisConnectionError("Connection refused")
        self.writes += 1

    async def delete(self, key: str) -> None:
        return None


def failures_counted(service: str) -> float:
    value = REGISTRY.get_sample_value("vtx_worker_heartbeat_failures_total", {"service": service})
    return value or 0.0


async def test_a_heartbeat_outage_is_logged_once_counted_each_time_and_its_end_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(worker, "log", recorder)
    monkeypatch.setattr(worker, "HEARTBEAT_S", 0.01)
    queue = FlakyQueue(failures=4)
    res = cast(Resources, type("Res", (), {"queue": queue})())
    before = failures_counted("beat-test")
    task = asyncio.create_task(heartbeat(res, Activity("beat-test", "w1")))
    for _ in range(500):
        if queue.writes >= 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert queue.writes >= 3
    assert recorder.events.count("worker.heartbeat_failed") == 1
    assert recorder.events.count("worker.heartbeat_recovered") == 1
    assert failures_counted("beat-test") - before == 4


class UnreachableWorker:
    """An arq worker whose Redis is down, and whose close() takes its time."""

    def __init__(self, closing: asyncio.Event) -> None:
        self.closing = closing

    async def async_run(self) -> None:
        raise RedisConnectionError("Connection refused")

    async def close(self) -> None:
        self.closing.set()
        await asyncio.sleep(30)


async def test_cancelling_a_supervised_worker_while_it_restarts_ends_it() -> None:
    closing = asyncio.Event()
    supervised = Supervised(lambda: cast(Worker, UnreachableWorker(closing)))
    task = asyncio.create_task(supervised.run())
    await asyncio.wait_for(closing.wait(), timeout=5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:  # the old code swallowed the cancellation and kept restarting
        while not task.done():
            task.cancel()
            await asyncio.sleep(0.05)
    assert done and task.cancelled()
