"""Draining a supervised arq worker on a real Redis: running jobs finish within the
grace, nothing new is taken, and what outlasts the grace is cancelled but stays queued."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.worker import func

from shared.runtime import Resources
from shared.worker import Activity, Supervised, create_worker

QUEUE = "vtx:test-drain"


class Sleeper:
    """A task that sleeps as long as it is told and says when it starts and ends."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.finished: list[float] = []

    async def sleep(self, ctx: dict[str, Any], seconds: float) -> None:
        self.started.set()
        await asyncio.sleep(seconds)
        self.finished.append(seconds)


def supervised(resources: Resources, sleeper: Sleeper) -> Supervised:
    ctx: dict[str, Any] = {"resources": resources, "activity": Activity("drain-test", "w")}
    task = func(sleeper.sleep, name="sleep")
    return Supervised(lambda: create_worker(resources.settings, [task], QUEUE, ctx, max_jobs=2))


async def queued(resources: Resources) -> int:
    return int(await resources.queue.zcard(QUEUE))


async def test_a_running_job_finishes_and_nothing_new_starts_while_draining(
    resources: Resources,
) -> None:
    sleeper = Sleeper()
    worker = supervised(resources, sleeper)
    running = asyncio.create_task(worker.run())
    await resources.queue.enqueue_job("sleep", 1.0, _queue_name=QUEUE, _job_id="first")
    await asyncio.wait_for(sleeper.started.wait(), timeout=30)
    stopping = asyncio.create_task(worker.stop(grace_s=30))
    await asyncio.sleep(0.2)
    await resources.queue.enqueue_job("sleep", 0.0, _queue_name=QUEUE, _job_id="late")
    await asyncio.wait_for(stopping, timeout=60)
    await asyncio.wait_for(running, timeout=10)
    assert sleeper.finished == [1.0]
    assert await queued(resources) == 1  # the late job waits for the next worker


async def test_a_job_that_outlasts_the_grace_is_cancelled_and_stays_queued(
    resources: Resources,
) -> None:
    sleeper = Sleeper()
    worker = supervised(resources, sleeper)
    running = asyncio.create_task(worker.run())
    await resources.queue.enqueue_job("sleep", 60.0, _queue_name=QUEUE, _job_id="long")
    await asyncio.wait_for(sleeper.started.wait(), timeout=30)
    await asyncio.wait_for(worker.stop(grace_s=0.5), timeout=30)
    await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), timeout=10)
    assert running.done() and not sleeper.finished
    assert await queued(resources) == 1  # arq runs it again on the next worker
