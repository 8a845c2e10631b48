"""The gatherer's own logic, over a fake engine that records each model call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from services.transcriber.batching import Gatherer
from services.transcriber.engine import DecodeOptions, EngineResult
from services.transcriber.windows import Audio, Window, WindowResult
from shared.transcript import Segment


class Recording:
    """Each window's result names the window; a prompt of 'broken' makes the call fail."""

    name = "tiny.en"
    device = "cpu"
    compute_type = "int8"

    def __init__(self) -> None:
        self.calls: list[tuple[DecodeOptions, list[str]]] = []
        self.hold = threading.Event()
        self.hold.set()

    def transcribe(self, audio: Audio, options: DecodeOptions) -> EngineResult:
        raise AssertionError("batched windows never take the sequential path")

    def decode_windows(
        self, windows: Sequence[Window], options: DecodeOptions
    ) -> list[WindowResult]:
        assert self.hold.wait(10)
        names = [label(w) for w in windows]
        self.calls.append((options, names))
        if options.prompt == "broken":
            raise RuntimeError("the model call failed")
        return [WindowResult("en", 1.0, [Segment(start=0, end=1, text=n)]) for n in names]


def window(name: str) -> Window:
    return Window(np.array([ord(c) for c in name], dtype=np.float32), ((0.0, 1.0),))


def label(w: Window) -> str:
    return "".join(chr(int(v)) for v in w.audio)


def texts(results: list[WindowResult]) -> list[str]:
    return [r.segments[0].text for r in results]


@pytest.fixture
def engine() -> Recording:
    return Recording()


@pytest.fixture
async def pool() -> AsyncIterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(1)
    yield executor
    await asyncio.to_thread(executor.shutdown)


def gatherer(engine: Recording, pool: ThreadPoolExecutor, size: int, wait_ms: float) -> Gatherer:
    return Gatherer(engine, pool, size, wait_ms)


async def test_windows_of_several_chunks_fill_one_call_without_waiting_out_the_delay(
    engine: Recording, pool: ThreadPoolExecutor
) -> None:
    async with gatherer(engine, pool, size=3, wait_ms=5000).running() as g:
        first = g.decode([window("a1"), window("a2")], DecodeOptions())
        second = g.decode([window("b1")], DecodeOptions(temperature=0.0, model="tiny.en"))
        a, b = await asyncio.wait_for(asyncio.gather(first, second), 2)
    assert (texts(a), texts(b)) == (["a1", "a2"], ["b1"])
    assert [names for _, names in engine.calls] == [["a1", "a2", "b1"]]


async def test_a_part_batch_starts_once_the_wait_is_over(
    engine: Recording, pool: ThreadPoolExecutor
) -> None:
    async with gatherer(engine, pool, size=8, wait_ms=20).running() as g:
        alone = await asyncio.wait_for(g.decode([window("a")], DecodeOptions()), 2)
    assert texts(alone) == ["a"]
    assert len(engine.calls) == 1


async def test_windows_that_cannot_share_a_call_get_their_own(
    engine: Recording, pool: ThreadPoolExecutor
) -> None:
    async with gatherer(engine, pool, size=8, wait_ms=20).running() as g:
        await asyncio.gather(
            g.decode([window("en")], DecodeOptions(language="en")),
            g.decode([window("de")], DecodeOptions(language="de")),
            g.decode([window("tr")], DecodeOptions(language="de", task="translate")),
            g.decode([window("hot")], DecodeOptions(language="en", temperature=0.4)),
        )
    assert sorted(names for _, names in engine.calls) == [["de"], ["en"], ["hot"], ["tr"]]
    assert {o.temperature for o, _ in engine.calls} == {0.0, 0.4}


async def test_windows_asking_for_other_hotwords_get_their_own_call(
    engine: Recording, pool: ThreadPoolExecutor
) -> None:
    async with gatherer(engine, pool, size=8, wait_ms=20).running() as g:
        await asyncio.gather(
            g.decode([window("plain")], DecodeOptions()),
            g.decode([window("comfy")], DecodeOptions(hotwords="ComfyUI")),
            g.decode([window("comfy2")], DecodeOptions(hotwords="ComfyUI")),
        )
    calls = sorted((o.hotwords or "", names) for o, names in engine.calls)
    assert calls == [("", ["plain"]), ("ComfyUI", ["comfy", "comfy2"])]


async def test_more_windows_than_a_batch_go_in_several_calls_in_order(
    engine: Recording, pool: ThreadPoolExecutor
) -> None:
    async with gatherer(engine, pool, size=2, wait_ms=300).running() as g:
        many = await asyncio.wait_for(
            g.decode([window(f"w{i}") for i in range(5)], DecodeOptions()), 20
        )
    assert texts(many) == [f"w{i}" for i in range(5)]
    assert [len(names) for _, names in engine.calls] == [2, 2, 1]


async def test_a_failed_call_fails_only_the_chunks_in_it(
    engine: Recording, pool: ThreadPoolExecutor
) -> None:
    async with gatherer(engine, pool, size=8, wait_ms=20).running() as g:
        broken, fine = await asyncio.gather(
            g.decode([window("x")], DecodeOptions(prompt="broken")),
            g.decode([window("ok")], DecodeOptions()),
            return_exceptions=True,
        )
        after = await asyncio.wait_for(g.decode([window("later")], DecodeOptions()), 2)
    assert isinstance(broken, RuntimeError)
    assert isinstance(fine, list) and texts(fine) == ["ok"]
    assert texts(after) == ["later"]


async def test_a_chunk_that_gives_up_leaves_the_queue_and_the_others_are_served(
    engine: Recording, pool: ThreadPoolExecutor
) -> None:
    engine.hold.clear()  # the first call blocks: what comes next has to queue
    async with gatherer(engine, pool, size=2, wait_ms=300).running() as g:
        running = asyncio.create_task(g.decode([window("r1"), window("r2")], DecodeOptions()))
        await asyncio.sleep(0.05)
        quitter = asyncio.create_task(g.decode([window("q")], DecodeOptions()))
        stayer = asyncio.create_task(g.decode([window("s")], DecodeOptions()))
        await asyncio.sleep(0.05)
        quitter.cancel()
        engine.hold.set()
        kept = await asyncio.wait_for(stayer, 10)
        assert texts(await running) == ["r1", "r2"]
    assert quitter.cancelled()
    assert texts(kept) == ["s"]
    assert [names for _, names in engine.calls] == [["r1", "r2"], ["s"]]
