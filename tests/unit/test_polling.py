"""The gateway pollers' loop (services/gateway/polling.py): reads only while someone
waits, and survives an outage, logging it once."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from services.gateway.polling import Poller


class Flaky(Poller):
    """Fails its reads while `down`; counts every read."""

    name = "test.poll"

    def __init__(self) -> None:
        super().__init__(tick_s=0.01)
        self.waiting = False
        self.down = False
        self.reads = 0

    def idle(self) -> bool:
        return not self.waiting

    async def tick(self) -> None:
        self.reads += 1
        if self.down:
            raise ConnectionError("database away")


async def reads_reach(poller: Flaky, count: int) -> None:
    async with asyncio.timeout(5):
        while poller.reads < count:
            await asyncio.sleep(0.005)


async def test_nobody_waiting_costs_no_read_and_a_waiter_is_read_at_once() -> None:
    async with Flaky() as poller:
        await asyncio.sleep(0.1)
        assert poller.reads == 0
        poller.waiting = True
        poller.wake()
        await reads_reach(poller, 3)


async def test_an_outage_is_logged_once_and_the_loop_goes_on() -> None:
    with capture_logs() as logs:
        async with Flaky() as poller:
            poller.waiting = True
            poller.down = True
            poller.wake()
            await reads_reach(poller, 5)
            poller.down = False
            await reads_reach(poller, poller.reads + 3)
    events = [entry["event"] for entry in logs]
    assert events.count("test.poll.read_failed") == 1, events
    assert events.count("test.poll.read_recovered") == 1, events
    assert events.index("test.poll.read_failed") < events.index("test.poll.read_recovered")
