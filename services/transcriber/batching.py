"""The gatherer: speech windows of every chunk a process holds, decoded in full batches.

Chunk tasks submit their windows and await the results; windows that can share one
model call (same model, task, language, prompt, hotwords, temperature: `call_key`)
wait together until `batch_size` of them are there or `batch_wait_ms` has passed since
the first came. Batches run one at a time on the model's executor, one CTranslate2
replica: the batch is the parallelism. A batch's error fails only the windows in it; a submitter
that gave up (cancelled, its lease lost) leaves its windows out of batches not yet
started, and a batch already running still delivers to everyone else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import structlog

from services.transcriber.engine import DecodeOptions, Engine, temperatures
from services.transcriber.windows import Window, WindowResult

log = structlog.get_logger(__name__)


@dataclass
class _Waiting:
    window: Window
    result: asyncio.Future[WindowResult]


@dataclass
class _Group:
    options: DecodeOptions
    since: float = field(default_factory=time.monotonic)
    waiting: list[_Waiting] = field(default_factory=list)


def call_key(options: DecodeOptions, default_model: str) -> DecodeOptions:
    """What must match for windows to share a call: equal options, the default model
    named, and a temperature as the batched call uses it (the first one only)."""
    return dataclasses.replace(
        options,
        model=options.model or default_model,
        temperature=temperatures(options.temperature)[0],
    )


class Gatherer:
    """One per transcriber process; `running()` starts and stops its batching task."""

    def __init__(self, engine: Engine, executor: Executor, size: int, wait_ms: float) -> None:
        self._engine = engine
        self._executor = executor
        self.size = max(1, size)
        self._wait_s = wait_ms / 1000
        self._groups: OrderedDict[DecodeOptions, _Group] = OrderedDict()
        self._arrived = asyncio.Event()
        self.batches = 0  # model calls made, for the logs and the tests

    async def decode(self, windows: Sequence[Window], options: DecodeOptions) -> list[WindowResult]:
        """The windows' results in order; raises what their batch raised."""
        loop = asyncio.get_running_loop()
        key = call_key(options, self._engine.name)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key)
        waiting = [_Waiting(w, loop.create_future()) for w in windows]
        group.waiting.extend(waiting)
        self._arrived.set()
        try:
            return list(await asyncio.gather(*(w.result for w in waiting)))
        finally:
            for w in waiting:
                w.result.cancel()  # a no-op once delivered; else leave the queue

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gatherer]:
        task = asyncio.create_task(self._run(), name="batch-gatherer")
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            for group in self._groups.values():
                for w in group.waiting:
                    w.result.cancel()

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            await self._decode(*batch)

    async def _next_batch(self) -> tuple[DecodeOptions, list[_Waiting]]:
        """The oldest group's first windows, once it is full or has waited long enough."""
        while True:
            self._drop_abandoned()
            if not self._groups:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            group = next(iter(self._groups.values()))
            left = group.since + self._wait_s - time.monotonic()
            if len(group.waiting) >= self.size or left <= 0:
                return group.options, self._take(group)
            self._arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def _take(self, group: _Group) -> list[_Waiting]:
        taken, group.waiting = group.waiting[: self.size], group.waiting[self.size :]
        del self._groups[group.options]
        if group.waiting:  # the rest wait afresh, behind the other groups
            group.since = time.monotonic()
            self._groups[group.options] = group
        return taken

    def _drop_abandoned(self) -> None:
        for key in list(self._groups):
            group = self._groups[key]
            group.waiting = [w for w in group.waiting if not w.result.done()]
            if not group.waiting:
                del self._groups[key]

    async def _decode(self, options: DecodeOptions, batch: list[_Waiting]) -> None:
        """One model call off the loop; its results or its error to each submitter."""
        loop = asyncio.get_running_loop()
        windows = [w.window for w in batch]
        self.batches += 1
        try:
            results = await loop.run_in_executor(
                self._executor, self._engine.decode_windows, windows, options
            )
            for w, result in zip(batch, results, strict=True):
                if not w.result.done():
                    w.result.set_result(result)
        except Exception as exc:
            log.warning("batch.failed", windows=len(batch), error=repr(exc))
            for w in batch:
                if not w.result.done():
                    w.result.set_exception(exc)
