"""How a job ends (shared/pipeline/outcomes.py) on a real Redis, database and store: the state
change is retried alone, what follows it happens whoever won the change, and a
chunk's error is retried only when retrying can help."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina
from arq import Retry

from services.splitter.tasks import split_job
from services.transcriber.engine import DecodeOptions, EngineResult
from services.transcriber.tasks import merge_job, transcribe_chunk
from shared.models import CallbackStatus, Job, JobStatus
from shared.pipeline.outcomes import fail_job
from shared.runtime import Resources
from shared.store import chunk_key, chunk_prefix
from tests.integration.test_pipeline import reload, submit

CALLBACK = "https://receiver.example/hook"


@pytest.fixture
def quick_retries() -> Iterator[None]:
    """stamina's own test mode: two attempts per retried step, no waiting between."""
    with stamina.set_testing(True, attempts=2):
        yield


def break_deletes(res: Resources, monkeypatch: pytest.MonkeyPatch, times: int) -> list[str]:
    """The store's prefix delete raises OSError `times` times, then works; returns the calls."""
    calls: list[str] = []
    real = res.store.delete_prefix

    async def flaky(prefix: str) -> None:
        calls.append(prefix)
        if len(calls) <= times:
            raise OSError("store unreachable")
        await real(prefix)

    monkeypatch.setattr(res.store, "delete_prefix", flaky)
    return calls


def chunk_files(res: Resources, job_id: str) -> list[Path]:
    assert res.store.root is not None
    return list((res.store.root / chunk_prefix(job_id)).glob("*"))


@pytest.mark.usefixtures("quick_retries")
async def test_a_failure_retried_after_its_commit_still_cleans_up_and_calls_back(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first call commits `failed`, then its clean-up runs out of retries; the next
    call (a retry, a redelivery) finds the job failed already and still does the rest."""
    job = await submit(resources, speech_mp4, callback_url=CALLBACK)
    await split_job(ctx, {"job_id": job.id})
    assert chunk_files(resources, job.id)
    break_deletes(resources, monkeypatch, times=2)
    try:
        first = await fail_job(resources, job.id, "The audio could not be read.")
    except OSError:
        first = True  # the clean-up's error reaches the caller, not swallowed
    assert first is True
    assert await fail_job(resources, job.id, "The audio could not be read.") is False
    failed = await reload(resources, job.id)
    assert failed.status == JobStatus.failed and failed.error == "The audio could not be read."
    assert failed.callback_status == CallbackStatus.pending.value
    assert not chunk_files(resources, job.id)


@pytest.mark.usefixtures("quick_retries")
async def test_a_merge_retried_after_its_commit_still_cleans_up_and_calls_back(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await submit(resources, speech_mp4, callback_url=CALLBACK)
    await split_job(ctx, {"job_id": job.id})
    calls = break_deletes(resources, monkeypatch, times=2)
    for index in range(2):
        assert await transcribe_chunk(ctx, {"job_id": job.id, "index": index}) == "done"
    with pytest.raises(Retry):  # the merge committed, then its clean-up gave up: again later
        await transcribe_chunk(ctx, {"job_id": job.id, "index": 2})
    assert (await reload(resources, job.id)).status == JobStatus.completed
    assert len(calls) == 2
    assert await transcribe_chunk(ctx, {"job_id": job.id, "index": 2}) == "dropped"
    completed = await reload(resources, job.id)
    assert completed.callback_status == CallbackStatus.pending.value
    assert not chunk_files(resources, job.id)


async def test_a_merge_delivered_again_finishes_what_a_dead_worker_left_undone(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4, callback_url=CALLBACK)
    await split_job(ctx, {"job_id": job.id})
    for index in range(3):
        assert await transcribe_chunk(ctx, {"job_id": job.id, "index": index}) == "done"
    # As if the worker died between the completion's commit and what follows it.
    await resources.store.put_bytes(chunk_key(job.id, 0), b"\x00\x00")
    async with resources.sessions() as session:
        row = await session.get(Job, job.id)
        assert row is not None and row.status == JobStatus.completed
        row.callback_status = None
        session.add(row)
        await session.commit()
    assert await merge_job(ctx, {"job_id": job.id}) == "not-ready"  # nothing left to merge
    completed = await reload(resources, job.id)
    assert completed.callback_status == CallbackStatus.pending.value
    assert not chunk_files(resources, job.id)


async def test_a_chunk_that_cannot_be_decoded_fails_its_job_on_the_first_try(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """Three bytes are not 16-bit samples: a permanent error, so no retry can help."""
    job = await submit(resources, speech_mp4, callback_url=CALLBACK)
    await split_job(ctx, {"job_id": job.id})
    await resources.store.put_bytes(chunk_key(job.id, 1), b"\x00\x01\x02")
    assert await transcribe_chunk(ctx, {"job_id": job.id, "index": 1}) == "failed"
    failed = await reload(resources, job.id)
    assert failed.status == JobStatus.failed
    assert failed.error is not None and "Chunk 1 could not be transcribed" in failed.error
    assert failed.callback_status == CallbackStatus.pending.value
    assert not chunk_files(resources, job.id)


class UnreachableEngine:
    """A model server that drops the connection: a transient error, worth retrying."""

    name = "unreachable"
    device = "cpu"
    compute_type = "int8"

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio: Any, options: DecodeOptions) -> EngineResult:
        self.calls += 1
        raise ConnectionResetError("connection reset by peer")

    def decode_windows(self, windows: Any, options: DecodeOptions) -> Any:
        return self.transcribe(windows, options)


async def test_a_transient_chunk_error_is_retried_until_the_tries_run_out(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    engine = UnreachableEngine()
    flaky = {**ctx, "engine": engine}
    outcomes = []
    for _ in range(resources.settings.max_tries):
        try:
            outcomes.append(await transcribe_chunk(flaky, {"job_id": job.id, "index": 0}))
        except Retry:
            outcomes.append("retry")
    assert outcomes == ["retry", "retry", "failed"]
    assert engine.calls == resources.settings.max_tries
    failed = await reload(resources, job.id)
    assert failed.error is not None and "after 3 tries" in failed.error
