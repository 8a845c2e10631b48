"""Leases, the reconciler, retries and retention, on a real Redis and database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from arq.constants import in_progress_key_prefix
from sqlalchemy import update
from sqlmodel import col

from services.splitter.tasks import split_job
from services.transcriber.tasks import transcribe_chunk
from shared.models import Job, JobStatus, Transcript, utcnow
from shared.pipeline import retention
from shared.pipeline.contracts import TRANSCRIBE_QUEUE, transcribe_job_id
from shared.pipeline.leases import claim_chunk, claim_split
from shared.pipeline.reconciler import reconcile_once
from shared.runtime import Resources
from shared.store import chunk_key, media_key
from tests.integration.test_pipeline import chunks_of, reload, submit


async def transcribe_all(ctx: dict[str, Any], job_id: str, count: int) -> None:
    for index in range(count):
        assert await transcribe_chunk(ctx, {"job_id": job_id, "index": index}) == "done"


async def test_a_chunk_that_always_fails_fails_its_job_and_only_its_job(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    broken = await submit(resources, speech_mp4)
    healthy = await submit(resources, speech_mp4)
    for job in (broken, healthy):
        await split_job(ctx, {"job_id": job.id})
    # Three bytes are not 16-bit samples: a permanent error, so the first try fails the job.
    await resources.store.put_bytes(chunk_key(broken.id, 1), b"\x00\x01\x02")
    assert await transcribe_chunk(ctx, {"job_id": broken.id, "index": 1}) == "failed"
    failed = await reload(resources, broken.id)
    assert failed.status == JobStatus.failed
    assert failed.error is not None and "Chunk 1" in failed.error
    assert await transcribe_chunk(ctx, {"job_id": broken.id, "index": 2}) == "dropped"
    await transcribe_all(ctx, healthy.id, 3)
    assert (await reload(resources, healthy.id)).status == JobStatus.completed


async def test_a_chunk_started_too_often_fails_its_job(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """A chunk that keeps killing its worker never finishes: its attempts run out."""
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    for n in range(resources.settings.max_tries):
        lease = await claim_chunk(resources.sessions, job.id, 0, f"doomed-{n}", 0.01)
        assert lease is not None  # ...and the worker dies holding it
        await asyncio.sleep(0.02)
    assert await transcribe_chunk(ctx, {"job_id": job.id, "index": 0}) == "failed"
    failed = await reload(resources, job.id)
    assert failed.error is not None and "started 4 times" in failed.error


async def test_a_split_started_too_often_fails_its_job(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """A file that keeps killing its splitter never finishes: its attempts run out."""
    job = await submit(resources, speech_mp4)
    for n in range(resources.settings.max_tries):
        lease = await claim_split(resources.sessions, job.id, f"doomed-{n}", 0.01)
        assert lease is not None  # ...and the splitter dies holding it
        await asyncio.sleep(0.02)
    assert await split_job(ctx, {"job_id": job.id}) == "failed"
    failed = await reload(resources, job.id)
    assert failed.status == JobStatus.failed
    assert failed.error == (
        "Splitting was started 4 times without finishing "
        "(the splitter crashed or was stopped each time)."
    )
    assert failed.lease_owner is None


async def test_a_live_lease_keeps_others_out_and_an_expired_one_lets_them_in(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    assert await claim_chunk(resources.sessions, job.id, 0, "a", 0.3) is not None
    assert await claim_chunk(resources.sessions, job.id, 0, "b", 0.3) is None
    assert await claim_chunk(resources.sessions, job.id, 0, "a", 0.3) is not None  # renewal
    await asyncio.sleep(0.35)
    assert await claim_chunk(resources.sessions, job.id, 0, "b", 0.3) is not None
    assert (await chunks_of(resources, job.id))[0].attempts == 3


async def test_a_heartbeat_notices_its_job_was_deleted(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    lease = await claim_chunk(resources.sessions, job.id, 0, "worker", 0.3)
    assert lease is not None
    async with lease.heartbeat(0.3):
        async with resources.sessions() as session:
            await session.delete(await session.get(Job, job.id))
            await session.commit()
        await asyncio.wait_for(lease.lost.wait(), timeout=2)


async def test_the_reconciler_re_enqueues_what_redis_lost(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    queued = await submit(resources, speech_mp4)
    split = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": split.id})
    await resources.queue.flushall()
    found = await reconcile_once(resources)
    assert (found.splits, found.chunks, found.merges) == (1, 3, 0)
    again = await reconcile_once(resources)  # same ids: nothing is queued twice
    assert (again.splits, again.chunks) == (0, 0)
    assert await resources.queue.zcard(TRANSCRIBE_QUEUE) == 3
    assert (await reload(resources, queued.id)).status == JobStatus.queued
    await transcribe_all(ctx, split.id, 3)


async def test_media_is_kept_for_the_retention_then_swept(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    await transcribe_all(ctx, job.id, 3)
    store_root = resources.store.root
    assert store_root is not None
    assert (store_root / media_key(job.id)).is_file()  # default retention: 7 days
    assert not list((store_root / "chunks" / job.id).glob("*"))  # chunks go at once
    assert await retention.sweep(resources) == 0
    async with resources.sessions() as session:
        past = utcnow() - timedelta(days=8)
        await session.exec(update(Job).where(col(Job.id) == job.id).values(finished_at=past))
        await session.commit()
    assert await retention.sweep(resources) == 1
    assert not (store_root / media_key(job.id)).exists()
    assert (await reload(resources, job.id)).media_deleted_at is not None
    async with resources.sessions() as session:
        assert await session.get(Transcript, job.id) is not None  # kept until deletion


async def test_zero_retention_drops_media_when_the_job_ends(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    resources.settings.media_retention = timedelta(0)
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    await transcribe_all(ctx, job.id, 3)
    assert resources.store.root is not None
    assert not (resources.store.root / media_key(job.id)).exists()


async def test_a_chunk_taken_by_a_worker_that_died_before_claiming_it_is_queued_again(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    """arq marks a job in progress before the worker claims its chunk; a worker killed in
    between leaves that mark for arq's whole timeout, under the chunk's only arq id."""
    job = await submit(resources, speech_mp4)
    await split_job(ctx, {"job_id": job.id})
    queue, settings = resources.queue, resources.settings
    in_progress_ms = (settings.job_timeout_s + 10) * 1000
    dead, alive = (transcribe_job_id(job.id, index, 0) for index in (0, 1))
    await queue.psetex(in_progress_key_prefix + dead, in_progress_ms - 100_000, b"1")  # 100 s ago
    await queue.psetex(in_progress_key_prefix + alive, in_progress_ms - 1_000, b"1")  # just now
    counts = await reconcile_once(resources)
    assert counts.chunks == 1  # the dead worker's chunk, queued afresh; the others are queued
    assert not await queue.exists(in_progress_key_prefix + dead)
    assert await queue.zscore(TRANSCRIBE_QUEUE, dead) is not None
    assert await queue.exists(in_progress_key_prefix + alive)  # a live worker's, left alone
    assert await transcribe_chunk(ctx, {"job_id": job.id, "index": 0}) == "done"
