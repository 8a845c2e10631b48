"""The loop under the gateway's two pollers (waiting.py's `EndWaiter`, watcher.py's
`EventWatcher`): one database read per tick for everyone waiting, none while nobody is.

Started and stopped by the gateway's lifespan (`async with`). A failed read (the
database away) leaves every waiter where it was; the next tick tries again, and the
outage is logged once, with its recovery.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import structlog

log = structlog.get_logger(__name__)


class Poller:
    """Subclasses say when there is nothing to read (`idle`), what one read does (`tick`)
    and, if not a plain `tick_s`, how long to rest between reads (`rest`)."""

    name = "poller"  # the task's name, and the prefix of the outage's log events

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=self.name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            # gather: the task's own cancellation is its result; ours would still be raised.
            await asyncio.gather(self._task, return_exceptions=True)

    def wake(self) -> None:
        """Read now rather than a tick later (someone new is waiting)."""
        self._wake.set()

    def idle(self) -> bool:
        raise NotImplementedError

    async def tick(self) -> None:
        raise NotImplementedError

    async def rest(self) -> None:
        await asyncio.sleep(self.tick_s)

    async def _run(self) -> None:
        while True:
            if self.idle():
                await self._wake.wait()
            self._wake.clear()
            await self._tick_logged()
            await self.rest()

    async def _tick_logged(self) -> None:
        try:
            await self.tick()
        except Exception as exc:
            if not self._failing:
                log.warning(f"{self.name}.read_failed", error=repr(exc))
            self._failing = True
            return
        if self._failing:
            log.info(f"{self.name}.read_recovered")
        self._failing = False
