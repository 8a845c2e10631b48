"""The pipeline's tasks against a real Redis, a real SQLite file and the real model."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from services.splitter.tasks import split_job
from services.transcriber.tasks import transcribe_chunk, try_merge
from services.transcriber.worker import transcriber_worker
from shared.media import probe
from shared.models import Chunk, ChunkStatus, Job, JobStatus, Transcript
from shared.pipeline.contracts import TRANSCRIBE_QUEUE, merge_job_id, transcribe_job_id
from shared.runtime import Resources
from shared.speech_models import bundled_path
from shared.store import chunk_key, media_key
from shared.worker import running
from tests.conftest import make_silent_video, recall


async def submit(res: Resources, source: Path, **fields: Any) -> Job:
    """What the gateway does after an upload: store the media, write the row."""
    info = probe(source)
    job = Job(
        media_key="",
        chunk_seconds=res.settings.chunk_seconds,
        duration_s=info.duration_s,
        **fields,
    )
    job.media_key = media_key(job.id)
    spool = res.settings.data_dir / "spool"
    shutil.copy(source, spool)
    await res.store.put_file(job.media_key, spool)
    async with res.sessions() as session:
        session.add(job)
        await session.commit()
    return job


async def chunks_of(res: Resources, job_id: str) -> list[Chunk]:
    async with res.sessions() as session:
        rows = await session.exec(
            select(Chunk).where(Chunk.job_id == job_id).order_by(col(Chunk.index))
        )
        return list(rows)


async def reload(res: Resources, job_id: str) -> Job:
    async with res.sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def test_split_cuts_the_file_into_stored_chunks_and_queues_them(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4)
    assert await split_job(ctx, {"job_id": job.id}) == "split"
    chunks = await chunks_of(resources, job.id)
    job = await reload(resources, job.id)
    assert job.status == JobStatus.transcribing
    assert job.chunks_total == len(chunks) == 3
    assert chunks[0].start_s == 0
    for before, after in itertools.pairwise(chunks):
        assert before.end_s == after.start_s
    assert abs(chunks[-1].end_s - (job.duration_s or 0)) < 0.2
    for c in chunks:
        pcm = await resources.store.get_bytes(chunk_key(job.id, c.index))
        assert len(pcm) == round((c.end_s - c.start_s) * 16000) * 2
    queued = await resources.queue.zrange(TRANSCRIBE_QUEUE, 0, -1)
    # One per chunk; no merge: chunks still to do merge the job when the last is done.
    assert sorted(queued) == sorted(transcribe_job_id(job.id, c.index, 0).encode() for c in chunks)


async def test_a_split_that_ends_after_every_chunk_is_done_queues_the_merge(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """The race the merge task is for: every chunk done before the split records their
    count, so no transcriber could merge, and only the split can."""
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    async with resources.sessions() as session:
        await session.exec(
            update(Chunk).where(col(Chunk.job_id) == job.id).values(status=ChunkStatus.done.value)
        )
        await session.exec(
            update(Job)
            .where(col(Job.id) == job.id)
            .values(status=JobStatus.splitting.value, chunks_total=None, lease_owner=None)
        )
        await session.commit()
    await resources.queue.delete(TRANSCRIBE_QUEUE)
    assert await split_job(ctx, {"job_id": job.id}) == "split"
    queued = await resources.queue.zrange(TRANSCRIBE_QUEUE, 0, -1)
    assert queued == [merge_job_id(job.id).encode()]


async def test_a_chunk_transcribes_with_whole_file_times(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    second = (await chunks_of(resources, job.id))[1]
    assert await transcribe_chunk(ctx, {"job_id": job.id, "index": 1}) == "done"
    done = (await chunks_of(resources, job.id))[1]
    assert done.status == ChunkStatus.done and done.segments
    assert done.language == "en"
    times = [t for s in done.segments for w in s["words"] for t in (w["start"], w["end"])]
    assert times == sorted(times)
    assert second.start_s <= times[0] and times[-1] <= second.end_s
    text = " ".join(s["text"] for s in done.segments)
    assert recall(["chunk", "quiet", "moment", "weather", "sunny"], text) >= 0.6


async def test_a_chunk_delivered_twice_keeps_one_set_of_words(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    undisturbed = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": undisturbed.id})
    assert await transcribe_chunk(ctx, {"job_id": undisturbed.id, "index": 2}) == "done"
    again = await transcribe_chunk(ctx, {"job_id": undisturbed.id, "index": 2})
    assert again == "already-done"
    reference = (await chunks_of(resources, undisturbed.id))[2]

    raced = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": raced.id})
    other = {**ctx, "worker_id": "test-worker-b"}
    both = await asyncio.gather(
        transcribe_chunk(ctx, {"job_id": raced.id, "index": 2}),
        transcribe_chunk(other, {"job_id": raced.id, "index": 2}),
    )
    assert sorted(both) == ["done", "held-elsewhere"]
    chunk = (await chunks_of(resources, raced.id))[2]
    assert chunk.attempts == 1
    assert chunk.lease_owner is None
    assert chunk.segments and chunk.segments == reference.segments


async def test_a_job_of_several_chunks_merges_through_real_workers(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path, speech_words: list[str]
) -> None:
    job = await submit(resources, speech_mp4)
    extra = {"engine": ctx["engine"], "executor": ctx["executor"], "layout": ctx["layout"]}
    async with running(resources, "transcriber", lambda c: transcriber_worker(resources, c), extra):
        await split_job(ctx, {"job_id": job.id})
        for _ in range(600):
            if (await reload(resources, job.id)).status == JobStatus.completed:
                break
            await asyncio.sleep(0.1)
    job = await reload(resources, job.id)
    assert job.status == JobStatus.completed, job.error
    async with resources.sessions() as session:
        transcript = await session.get(Transcript, job.id)
    assert transcript is not None and transcript.language == "en"
    text = " ".join(s["text"] for s in transcript.segments)
    assert recall(speech_words, text) >= 0.85, text
    times = [t for s in transcript.segments for t in (s["start"], s["end"])]
    assert times == sorted(times)
    assert resources.store.root is not None
    assert not list((resources.store.root / "chunks" / job.id).glob("*"))  # chunks deleted
    assert await try_merge(resources, job.id) is False  # merging twice changes nothing


async def test_a_video_without_audio_fails_with_its_reason(
    ctx: dict[str, Any], resources: Resources, tmp_path: Path
) -> None:
    job = await submit(resources, make_silent_video(tmp_path / "silent.mp4"))
    assert await split_job(ctx, {"job_id": job.id}) == "failed"
    job = await reload(resources, job.id)
    assert job.status == JobStatus.failed
    assert job.error is not None and "no audio track" in job.error


async def test_audio_over_the_duration_limit_fails_before_decoding(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    resources.settings.max_duration_s = 5
    job = await submit(resources, speech_mp4)
    assert await split_job(ctx, {"job_id": job.id}) == "failed"
    job = await reload(resources, job.id)
    assert job.error is not None and "longer than the limit" in job.error


async def test_a_deleted_job_is_dropped_by_the_workers(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    async with resources.sessions() as session:
        await session.delete(await session.get(Job, job.id))
        await session.commit()
    assert await transcribe_chunk(ctx, {"job_id": job.id, "index": 0}) == "dropped"
    assert await split_job(ctx, {"job_id": job.id}) == "dropped"


async def test_translating_with_an_english_only_model_of_the_model_dir_fails_at_once(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path, tmp_path: Path
) -> None:
    """Told by the model's vocabulary, not its name: a model imported as `plain` is
    English-only whatever it is called."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "plain").symlink_to(bundled_path())
    resources.settings.model_dir = models
    job = await submit(resources, speech_mp4, task="translate", model="plain")
    await split_job(ctx, {"job_id": job.id})
    assert await transcribe_chunk(ctx, {"job_id": job.id, "index": 0}) == "failed"
    failed = await reload(resources, job.id)
    assert failed.error == "The model knows only English: it cannot translate."
