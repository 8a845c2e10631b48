"""Quotas on a real database and Redis: which limits apply to whom, what counts as held,
and how an upload over a limit is refused (services.gateway.quotas); the shorter
retention of failed media that keeps failures from holding storage (shared.pipeline.retention)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from arq import ArqRedis
from prometheus_client import REGISTRY

from services.gateway import quotas
from services.gateway.auth import Caller
from services.gateway.errors import headers_of, status_of
from services.gateway.problems import Problem
from shared.models import ApiKey, Job, JobStatus, new_id, utcnow
from shared.pipeline import retention
from shared.runtime import Resources
from shared.store import media_key
from tests.conftest import free_port

GB = 1024**3


def with_settings(res: Resources, **changes: Any) -> Resources:
    return dataclasses.replace(res, settings=res.settings.model_copy(update=changes))


async def add_key(
    res: Resources, quota_audio_hours: float | None = None, quota_storage_gb: float | None = None
) -> str:
    """A key row with these overrides (None: the server's settings), as `vtx keys create`
    would store it."""
    key_id = new_id()
    row = ApiKey(
        id=key_id,
        name="test",
        prefix=key_id[:12],
        key_hash=key_id * 2,
        quota_audio_hours=quota_audio_hours,
        quota_storage_gb=quota_storage_gb,
    )
    async with res.sessions() as session:
        session.add(row)
        await session.commit()
    return key_id


async def add_job(
    res: Resources,
    owner: str | None,
    status: JobStatus,
    duration_s: float | None,
    size: int,
    **values: Any,
) -> Job:
    job = Job(
        media_key="",
        chunk_seconds=10,
        owner_id=owner,
        status=status.value,
        duration_s=duration_s,
        size_bytes=size,
        **values,
    )
    job.media_key = media_key(job.id)
    async with res.sessions() as session:
        session.add(job)
        await session.commit()
    return job


async def test_a_keys_own_quotas_replace_the_servers_and_zero_means_none(
    resources: Resources,
) -> None:
    res = with_settings(resources, quota_audio_hours=24.0, quota_storage_gb=50.0)
    plain = await add_key(res)
    own = await add_key(res, quota_audio_hours=0.5, quota_storage_gb=2.0)
    unlimited = await add_key(res, quota_audio_hours=0.0, quota_storage_gb=0.0)

    server = await quotas.limits_for(res, Caller(plain))
    assert (server.audio_s, server.storage_bytes) == (24 * 3600, 50 * GB)
    assert not server.own_audio and "VTX_QUOTA_AUDIO_HOURS" in server.audio_source()

    mine = await quotas.limits_for(res, Caller(own))
    assert (mine.audio_s, mine.storage_bytes) == (1800, 2 * GB)
    assert mine.own_audio and mine.own_storage

    none = await quotas.limits_for(res, Caller(unlimited))
    assert (none.audio_s, none.storage_bytes) == (0, 0)
    await add_job(res, unlimited, JobStatus.queued, 10 * 24 * 3600, GB)
    async with quotas.admitted(res, Caller(unlimited), 10 * 24 * 3600, 100 * GB):
        pass  # no limit of audio or storage: admitted, over any server-wide figure


async def test_usage_counts_audio_in_flight_and_media_still_kept(resources: Resources) -> None:
    res = with_settings(resources, max_duration_s=6 * 3600)
    key, other = await add_key(res), await add_key(res)
    await add_job(res, key, JobStatus.queued, 100.0, 1000)
    await add_job(res, key, JobStatus.splitting, 20.5, 300)
    await add_job(res, key, JobStatus.transcribing, None, 7)  # length unknown: the maximum
    await add_job(res, key, JobStatus.completed, 50.0, 2000, finished_at=utcnow())
    await add_job(
        res, key, JobStatus.failed, 40.0, 5000, finished_at=utcnow(), media_deleted_at=utcnow()
    )
    await add_job(res, other, JobStatus.queued, 999.0, 99999)
    await add_job(res, None, JobStatus.queued, 999.0, 99999)

    held = await quotas.usage_of(res, Caller(key))
    assert held == quotas.Usage(active_jobs=3, audio_s=120.5 + 6 * 3600, stored_bytes=3307)
    assert await quotas.usage_of(res, Caller(new_id())) == quotas.Usage(0, 0.0, 0)


async def test_with_the_api_open_keyless_jobs_share_only_a_storage_cap(
    resources: Resources,
) -> None:
    res = with_settings(resources, quota_audio_hours=0.01, quota_storage_gb=1.0)
    key = await add_key(res)
    await add_job(res, None, JobStatus.queued, 3600.0, GB // 2)
    await add_job(res, None, JobStatus.completed, 60.0, GB // 4, finished_at=utcnow())
    await add_job(res, key, JobStatus.queued, 60.0, GB)  # a key's job is not the open pool's

    open_caller = Caller()
    limits = await quotas.limits_for(res, open_caller)
    assert limits == quotas.Limits(active_jobs=0, audio_s=0.0, storage_bytes=GB)
    held = await quotas.usage_of(res, open_caller)
    assert held == quotas.Usage(active_jobs=1, audio_s=3600.0, stored_bytes=3 * GB // 4)

    async with quotas.admitted(res, open_caller, 10 * 3600, GB // 4):
        pass  # hours of audio are fine when open; the storage just fits
    with pytest.raises(Problem) as refused:
        async with quotas.admitted(res, open_caller, 1.0, GB // 4 + 1):
            raise AssertionError("admitted over the storage cap")
    assert status_of(refused.value) == 413
    assert "768.0 MB" in refused.value.message and "1.0 GB" in refused.value.message


async def test_over_a_limit_is_429_while_it_frees_up_and_413_when_waiting_cannot_help(
    resources: Resources,
) -> None:
    res = with_settings(resources, quota_audio_hours=1.0, quota_storage_gb=1.0, max_active_jobs=3)
    key = Caller(await add_key(res))
    await add_job(res, key.key_id, JobStatus.transcribing, 3000.0, GB // 2)

    async with quotas.admitted(res, key, 600.0, GB // 2):
        pass  # exactly at both limits is still within them

    with pytest.raises(Problem) as busy:
        async with quotas.admitted(res, key, 601.0, 1):
            raise AssertionError("admitted over the audio budget")
    assert status_of(busy.value) == 429
    assert int(headers_of(busy.value)["Retry-After"]) >= 1
    assert busy.value.message == (
        "This key has 50.0 min of audio in flight and this file adds 10.0 min, more than "
        "its limit of 60.0 min (VTX_QUOTA_AUDIO_HOURS); it frees up as its jobs finish."
    )

    with pytest.raises(Problem) as never:
        async with quotas.admitted(res, key, 3601.0, 1):
            raise AssertionError("admitted a file longer than the whole budget")
    assert status_of(never.value) == 413 and "whole budget of 60.0 min" in never.value.message

    with pytest.raises(Problem) as full:
        async with quotas.admitted(res, key, 1.0, GB // 2 + 1):
            raise AssertionError("admitted over the storage limit")
    assert status_of(full.value) == 413
    assert "stores 512.0 MB of media" in full.value.message
    assert "VTX_QUOTA_STORAGE_GB" in full.value.message and "DELETE /v1/jobs/" in full.value.message


async def test_the_early_check_refuses_only_what_is_already_full(resources: Resources) -> None:
    res = with_settings(resources, quota_audio_hours=1.0, quota_storage_gb=1.0, max_active_jobs=2)
    key = Caller(await add_key(res))
    await add_job(res, key.key_id, JobStatus.queued, 3599.0, GB - 1)
    await quotas.check_before_upload(res, key)  # a short, small file may still fit

    await add_job(res, key.key_id, JobStatus.completed, 1.0, 1, finished_at=utcnow())
    with pytest.raises(Problem) as full:
        await quotas.check_before_upload(res, key)
    assert status_of(full.value) == 413  # storage first: waiting would not free it

    crowded = Caller(await add_key(res, quota_storage_gb=0.0))
    for _ in range(2):
        await add_job(res, crowded.key_id, JobStatus.queued, 1.0, 1)
    with pytest.raises(Problem) as busy:
        await quotas.check_before_upload(res, crowded)
    assert status_of(busy.value) == 429 and "VTX_MAX_ACTIVE_JOBS" in busy.value.message


async def test_two_uploads_at_once_cannot_both_take_the_last_room(resources: Resources) -> None:
    res = with_settings(resources, quota_audio_hours=1.0, quota_storage_gb=0.0)
    key = Caller(await add_key(res))
    outcomes: list[int] = []

    async def upload() -> None:
        try:
            async with quotas.admitted(res, key, 2000.0, 1):
                await asyncio.sleep(0.2)  # the store write, while the other one waits
                await add_job(res, key.key_id, JobStatus.queued, 2000.0, 1)
            outcomes.append(202)
        except Problem as exc:
            outcomes.append(status_of(exc))

    await asyncio.gather(upload(), upload())
    assert sorted(outcomes) == [202, 429]


async def test_a_held_lock_is_a_429_to_retry_not_an_error(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quotas, "LOCK_WAIT_S", 0.3)
    key = Caller(await add_key(resources))
    held = resources.queue.lock(f"vtx:quota:{key.key_id}", timeout=30)
    assert await held.acquire()
    try:
        with pytest.raises(Problem) as busy:
            async with quotas.admitted(resources, key, 1.0, 1):
                raise AssertionError("admitted while another upload holds the lock")
    finally:
        await held.release()
    assert status_of(busy.value) == 429 and "try again" in busy.value.message


def unlocked_checks() -> float:
    return REGISTRY.get_sample_value("vtx_quota_checks_unlocked_total") or 0.0


async def test_without_redis_the_check_still_counts_unlocked_and_says_so(
    resources: Resources,
) -> None:
    gone = ArqRedis(port=free_port(), socket_connect_timeout=1)  # nothing listens there
    res = dataclasses.replace(with_settings(resources, quota_audio_hours=1.0), queue=gone)
    key = Caller(await add_key(res))
    before = unlocked_checks()
    async with quotas.admitted(res, key, 3000.0, 1):
        await add_job(res, key.key_id, JobStatus.queued, 3000.0, 1)
    assert unlocked_checks() == before + 1
    with pytest.raises(Problem) as busy:  # the database still counts
        async with quotas.admitted(res, key, 1000.0, 1):
            raise AssertionError("admitted over the audio budget without Redis")
    assert status_of(busy.value) == 429
    await gone.aclose()


async def test_a_download_may_bring_only_the_storage_left(resources: Resources) -> None:
    res = with_settings(resources, quota_storage_gb=1.0, max_upload_mb=2048)
    key = Caller(await add_key(res))
    await add_job(res, key.key_id, JobStatus.completed, 1.0, GB - 5000, finished_at=utcnow())
    allowance = await quotas.download_allowance(res, key)
    assert allowance.max_bytes == 5000
    assert status_of(allowance.refusal) == 413
    assert "4.9 KB this caller may still store" in allowance.refusal.message

    roomy = Caller(await add_key(res, quota_storage_gb=0.0))
    free = await quotas.download_allowance(res, roomy)
    assert free.max_bytes == 2048 * 1024 * 1024 and "VTX_MAX_UPLOAD_MB" in free.refusal.message


async def test_failed_media_is_swept_after_its_own_shorter_retention(
    resources: Resources,
) -> None:
    res = with_settings(
        resources, media_retention=timedelta(days=7), failed_media_retention=timedelta(hours=1)
    )
    key = await add_key(res)
    two_hours_ago = utcnow() - timedelta(hours=2)
    failed = await add_job(res, key, JobStatus.failed, 5.0, 300, finished_at=two_hours_ago)
    fresh = await add_job(res, key, JobStatus.failed, 5.0, 200, finished_at=utcnow())
    done = await add_job(res, key, JobStatus.completed, 5.0, 100, finished_at=two_hours_ago)
    for job in (failed, fresh, done):
        await res.store.put_bytes(job.media_key, b"media")
    assert (await quotas.usage_of(res, Caller(key))).stored_bytes == 600

    assert await retention.sweep(res) == 1
    with pytest.raises(FileNotFoundError):
        await res.store.get_bytes(failed.media_key)
    for kept in (fresh, done):
        assert await res.store.get_bytes(kept.media_key) == b"media"
    async with res.sessions() as session:
        row = await session.get(Job, failed.id)
        assert row is not None and row.media_deleted_at is not None
    assert (await quotas.usage_of(res, Caller(key))).stored_bytes == 300


async def test_a_failure_never_keeps_its_media_longer_than_a_success(
    resources: Resources,
) -> None:
    res = with_settings(
        resources, media_retention=timedelta(0), failed_media_retention=timedelta(days=1)
    )
    job = await add_job(res, None, JobStatus.failed, 5.0, 100, finished_at=utcnow())
    await res.store.put_bytes(job.media_key, b"media")
    await retention.job_ended(res, job)
    with pytest.raises(FileNotFoundError):
        await res.store.get_bytes(job.media_key)
