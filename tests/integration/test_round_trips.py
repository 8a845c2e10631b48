"""What a job's end costs the database, counted on a real one: every statement the
pipeline sends after a job has ended, so a repeated clean-up stays one read."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from shared.models import CallbackStatus, Chunk, Job, JobStatus, utcnow
from shared.pipeline.leases import claim_chunk
from shared.pipeline.outcomes import settle
from shared.runtime import Resources
from shared.store import media_key


@contextmanager
def statements(res: Resources) -> Iterator[list[str]]:
    """The first word of every SQL statement sent meanwhile (SELECT, UPDATE, ...)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    event.listen(res.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(res.engine.sync_engine, "before_cursor_execute", record)


async def ended_job(res: Resources, **fields: Any) -> Job:
    job = Job(
        media_key="",
        chunk_seconds=60,
        status=JobStatus.completed.value,
        finished_at=utcnow(),
        **fields,
    )
    job.media_key = media_key(job.id)
    await res.store.put_bytes(job.media_key, b"media")
    async with res.sessions() as session:
        session.add(job)
        await session.commit()
    return job


async def reload(res: Resources, job_id: str) -> Job:
    async with res.sessions() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    return job


async def test_settling_a_job_without_a_callback_reads_it_once_and_writes_nothing(
    resources: Resources,
) -> None:
    job = await ended_job(resources)
    for _ in range(2):
        with statements(resources) as sent:
            await settle(resources, job.id, JobStatus.completed)
        assert sent == ["SELECT"]
    assert await resources.store.get_bytes(job.media_key) == b"media"  # retained


async def test_a_callback_is_started_once_then_settling_again_writes_nothing(
    resources: Resources,
) -> None:
    job = await ended_job(resources, callback_url="https://receiver.example/hook")
    with statements(resources) as sent:
        await settle(resources, job.id, JobStatus.completed)
    assert sent.count("UPDATE") == 1
    assert (await reload(resources, job.id)).callback_status == CallbackStatus.pending.value
    with statements(resources) as sent:
        await settle(resources, job.id, JobStatus.completed)
    assert sent == ["SELECT"]


async def test_media_kept_for_no_time_is_dropped_once(resources: Resources) -> None:
    res = dataclasses.replace(
        resources, settings=resources.settings.model_copy(update={"media_retention": timedelta(0)})
    )
    job = await ended_job(res)
    with statements(res) as sent:
        await settle(res, job.id, JobStatus.completed)
    assert sent.count("UPDATE") == 1
    assert (await reload(res, job.id)).media_deleted_at is not None
    with statements(res) as sent:
        await settle(res, job.id, JobStatus.completed)
    assert sent == ["SELECT"]


async def test_a_job_in_another_state_is_left_alone(resources: Resources) -> None:
    job = await ended_job(resources, callback_url="https://receiver.example/hook")
    with statements(resources) as sent:
        await settle(resources, job.id, JobStatus.failed)
    assert sent == ["SELECT"]
    assert (await reload(resources, job.id)).callback_status is None


async def test_a_lease_its_work_cleared_is_not_released_again(resources: Resources) -> None:
    """A chunk's completing UPDATE clears its lease; the heartbeat's exit then sends
    nothing, where an unfinished piece of work still gives its lease back."""
    job = Job(media_key="m", chunk_seconds=60, status=JobStatus.transcribing.value)
    async with resources.sessions() as session:
        session.add(job)
        await session.commit()
        session.add(Chunk(job_id=job.id, index=0, start_s=0, end_s=1, key="k"))
        session.add(Chunk(job_id=job.id, index=1, start_s=1, end_s=2, key="k"))
        await session.commit()
    done = await claim_chunk(resources.sessions, job.id, 0, "worker-a", 30)
    unfinished = await claim_chunk(resources.sessions, job.id, 1, "worker-a", 30)
    assert done is not None and unfinished is not None
    with statements(resources) as sent:
        async with done.heartbeat(30):
            done.ended()
    assert sent == []
    with statements(resources) as sent:
        async with unfinished.heartbeat(30):
            pass
    assert sent[0] == "UPDATE"
    async with resources.sessions() as session:
        chunk = await session.get(Chunk, (job.id, 1))
    assert chunk is not None and chunk.lease_owner is None
