"""The gateway's one event watcher on a real database: every stream of the process is fed
by one query round a tick, however many there are, and no stream holds a connection."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from services.gateway.main import create_app
from services.gateway.watcher import (
    RECENT,
    TICK_S,
    Batch,
    EventWatcher,
    JobState,
    ListSubscription,
    StreamLimit,
    Subscription,
)
from shared.config import Settings
from shared.models import CallbackDelivery, Chunk, ChunkStatus, Job, JobStatus, utcnow
from shared.runtime import Resources
from tests.conftest import free_port
from tests.integration.conftest import migrated


@contextmanager
def selects(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SELECT statements sent through `engine` while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def add_job(
    res: Resources,
    chunks: int = 3,
    owner: str | None = None,
    status: JobStatus = JobStatus.transcribing,
    finished_at: datetime | None = None,
    callback_url: str | None = None,
) -> str:
    """A job (being transcribed, by default) with `chunks` pending chunks (no media needed)."""
    job = Job(media_key="m", chunk_seconds=10, status=status, duration_s=30, owner_id=owner)
    job.callback_url = callback_url
    job.chunks_total = chunks
    job.finished_at = finished_at
    async with res.sessions() as session:
        session.add(job)
        await session.flush()
        for i in range(chunks):
            session.add(Chunk(job_id=job.id, index=i, start_s=10 * i, end_s=10 * i + 10, key="k"))
        await session.commit()
    return job.id


async def finish_chunk(res: Resources, job_id: str, index: int) -> None:
    async with res.sessions() as session:
        chunk = await session.get(Chunk, (job_id, index))
        assert chunk is not None
        chunk.status = ChunkStatus.done
        session.add(chunk)
        await session.commit()


async def set_status(res: Resources, job_id: str, status: JobStatus) -> None:
    async with res.sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        job.status = status
        session.add(job)
        await session.commit()


async def taken(subscription: Subscription) -> JobState | None:
    """What the subscription holds right now, without waiting."""
    return await subscription.next(0)


def done_of(state: JobState | None) -> int:
    assert state is not None and state.job is not None
    return state.done.chunks


async def test_one_tick_feeds_every_stream_with_the_same_queries(resources: Resources) -> None:
    first = await add_job(resources, callback_url="https://receiver.example/hook")
    second = await add_job(resources)
    watcher = EventWatcher(resources.sessions, per_holder=100)  # ticks by hand, no task
    a1 = watcher.subscribe(first, "key:a")
    a2 = watcher.subscribe(first, "key:b")
    b = watcher.subscribe(second, "key:a")
    with selects(resources.engine) as seen:
        await watcher.tick()
    assert len(seen) == 3  # jobs, progress, callback attempts of the new one with a callback
    assert [done_of(await taken(s)) for s in (a1, a2, b)] == [0, 0, 0]

    await finish_chunk(resources, first, 0)
    with selects(resources.engine) as seen:
        await watcher.tick()
    assert len(seen) == 3
    assert [done_of(await taken(a1)), done_of(await taken(a2))] == [1, 1]
    assert await taken(b) is None  # nothing changed on the other job: nothing handed out

    with selects(resources.engine) as quiet_three:
        await watcher.tick()
    more = [await add_job(resources) for _ in range(10)]
    for i, job_id in enumerate(more * 4):
        watcher.subscribe(job_id, f"address:10.0.0.{i}")
    await watcher.tick()  # the new ones' first read
    with selects(resources.engine) as quiet_forty_three:
        await watcher.tick()
    assert len(quiet_three) == len(quiet_forty_three) == 2  # jobs and progress, once each


async def test_a_slow_reader_gets_the_latest_state_and_holds_nobody_up(
    resources: Resources,
) -> None:
    job_id = await add_job(resources)
    watcher = EventWatcher(resources.sessions, per_holder=8)
    slow, fast = watcher.subscribe(job_id, "key:slow"), watcher.subscribe(job_id, "key:fast")
    await watcher.tick()
    assert done_of(await taken(fast)) == 0
    for index in range(3):
        await finish_chunk(resources, job_id, index)
        await watcher.tick()
        assert done_of(await taken(fast)) == index + 1
    assert done_of(await taken(slow)) == 3  # one state waiting, the newest, not a backlog of four
    assert await taken(slow) is None


async def test_a_deleted_job_is_handed_out_as_such(resources: Resources) -> None:
    job_id = await add_job(resources)
    watcher = EventWatcher(resources.sessions, per_holder=8)
    subscription = watcher.subscribe(job_id, "key:a")
    await watcher.tick()
    assert await taken(subscription) is not None
    async with resources.sessions() as session:
        job = await session.get(Job, job_id)
        await session.delete(job)
        await session.commit()
    await watcher.tick()
    gone = await taken(subscription)
    assert gone is not None and gone.job is None


async def test_streams_are_counted_per_holder(resources: Resources) -> None:
    job_id = await add_job(resources)
    watcher = EventWatcher(resources.sessions, per_holder=2)
    held = [watcher.subscribe(job_id, "key:a") for _ in range(2)]
    with pytest.raises(StreamLimit):
        watcher.subscribe(job_id, "key:a")
    watcher.subscribe(job_id, "key:b")  # another key's slots are its own
    held[0].close()
    held[0].close()  # twice gives back one slot, not two
    assert watcher.streams("key:a") == 1
    watcher.subscribe(job_id, "key:a")
    with pytest.raises(StreamLimit):
        watcher.subscribe(job_id, "key:a")


async def test_the_running_watcher_answers_at_once_and_idles_without_streams(
    resources: Resources,
) -> None:
    job_id = await add_job(resources)
    async with EventWatcher(resources.sessions, per_holder=8) as watcher:
        with selects(resources.engine) as idle:
            await asyncio.sleep(3 * TICK_S)
        assert idle == []  # nobody watches: the database is left alone
        subscription = watcher.subscribe(job_id, "key:a")
        state = await subscription.next(10)
        assert state is not None and state.job is not None and state.job.id == job_id
        await set_status(resources, job_id, JobStatus.completed)
        state = await subscription.next(10)
        assert state is not None and state.job is not None
        assert state.job.status == JobStatus.completed
        subscription.close()


# ------------------------------------------------------------- list streams
async def delete_job(res: Resources, job_id: str) -> None:
    async with res.sessions() as session:
        await session.delete(await session.get(Job, job_id))
        await session.commit()


async def batch_of(subscription: ListSubscription) -> Batch | None:
    return await subscription.next(0)


def told(batch: Batch | None) -> dict[str, tuple[str, int]]:
    """Each job the batch speaks of: its status ('deleted' when gone) and chunks done."""
    assert batch is not None
    return {s.job_id: (s.job.status if s.job else "deleted", s.done.chunks) for s in batch.states}


async def test_a_list_stream_follows_every_unfinished_job_of_its_owner_to_its_end(
    resources: Resources,
) -> None:
    first = await add_job(resources, owner="a")
    second = await add_job(resources, owner="a")
    await add_job(resources, owner="b")  # another key's job is never told
    long_ago = utcnow() - 3 * RECENT
    await add_job(resources, owner="a", status=JobStatus.completed, finished_at=long_ago)
    watcher = EventWatcher(resources.sessions, per_holder=8)
    listing = watcher.subscribe_list("a", "key:a")
    await watcher.tick()
    snapshot = await batch_of(listing)
    assert snapshot is not None and snapshot.snapshot
    assert told(snapshot) == {first: ("transcribing", 0), second: ("transcribing", 0)}

    await watcher.tick()
    assert await batch_of(listing) is None  # nothing changed: nothing handed out

    await finish_chunk(resources, first, 0)
    third = await add_job(resources, owner="a")  # started after the stream opened
    await watcher.tick()
    changes = await batch_of(listing)
    assert changes is not None and not changes.snapshot
    assert told(changes) == {first: ("transcribing", 1), third: ("transcribing", 0)}

    await set_status(resources, first, JobStatus.completed)
    await delete_job(resources, second)
    # Started and ended between two ticks: never seen unfinished, still told how it ended.
    quick = await add_job(resources, owner="a", status=JobStatus.failed, finished_at=utcnow())
    await watcher.tick()
    assert told(await batch_of(listing)) == {
        first: ("completed", 1),
        second: ("deleted", 0),
        quick: ("failed", 0),
    }
    await watcher.tick()
    assert await batch_of(listing) is None  # each end is told once


async def test_list_and_job_streams_share_one_round_of_queries_a_tick(
    resources: Resources,
) -> None:
    hook = "https://receiver.example/hook"
    mine = [await add_job(resources, owner=f"k{i % 3}", callback_url=hook) for i in range(6)]
    watcher = EventWatcher(resources.sessions, per_holder=100)
    job_stream = watcher.subscribe(mine[0], "key:k0")
    lists = [watcher.subscribe_list(f"k{i % 3}", f"key:k{i % 3}") for i in range(9)]
    everyone = watcher.subscribe_list(None, "address:127.0.0.1")  # the open API: every job
    with selects(resources.engine) as seen:
        await watcher.tick()
    assert len(seen) == 3  # jobs, progress, callback attempts, for all ten streams
    assert (await taken(job_stream)) is not None
    for i, listing in enumerate(lists):
        assert set(told(await batch_of(listing))) == set(mine[i % 3 :: 3])
    assert set(told(await batch_of(everyone))) == set(mine)
    with selects(resources.engine) as quiet:
        await watcher.tick()
    assert len(quiet) == 2  # jobs and progress, once each

    async with resources.sessions() as session:  # a callback attempt of one of k1's jobs
        job = await session.get(Job, mine[1])
        assert job is not None
        job.callback_attempts = 1
        session.add(job)
        session.add(CallbackDelivery(job_id=mine[1], attempt=1, status_code=500))
        await session.commit()
    await watcher.tick()
    assert [bool(await batch_of(listing)) for listing in lists] == [i % 3 == 1 for i in range(9)]
    late = watcher.subscribe_list("k1", "key:k1")  # joins a running watcher: a full snapshot
    await watcher.tick()
    snapshot = await batch_of(late)
    assert snapshot is not None and snapshot.snapshot and set(told(snapshot)) == set(mine[1::3])
    attempts = {s.job_id: len(s.deliveries) for s in snapshot.states}
    assert attempts[mine[1]] == 1  # what the others were told, callback attempts included
    assert [await batch_of(listing) for listing in lists] == [None] * 9  # nothing new to them


async def test_a_list_stream_takes_one_of_its_holders_slots(resources: Resources) -> None:
    job_id = await add_job(resources, owner="a")
    watcher = EventWatcher(resources.sessions, per_holder=2)
    listing = watcher.subscribe_list("a", "key:a")
    watcher.subscribe(job_id, "key:a")
    with pytest.raises(StreamLimit):
        watcher.subscribe_list("a", "key:a")
    with pytest.raises(StreamLimit):
        watcher.subscribe(job_id, "key:a")
    listing.close()
    listing.close()  # twice gives back one slot, not two
    assert watcher.streams("key:a") == 1
    watcher.subscribe_list("a", "key:a")
    assert watcher.streams("key:a") == 2


async def test_the_running_watcher_answers_a_new_list_stream_at_once(
    resources: Resources,
) -> None:
    job_id = await add_job(resources, owner="a")
    async with EventWatcher(resources.sessions, per_holder=8) as watcher:
        listing = watcher.subscribe_list("a", "key:a")
        batch = await listing.next(10)
        assert batch is not None and batch.snapshot and set(told(batch)) == {job_id}
        await set_status(resources, job_id, JobStatus.completed)
        batch = await listing.next(10)
        assert told(batch) == {job_id: ("completed", 0)}
        listing.close()
        with selects(resources.engine) as idle:
            await asyncio.sleep(3 * TICK_S)
        assert idle == []  # the last stream went: the database is left alone


# ------------------------------------------------------------------ over HTTP
@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The gateway app behind a real uvicorn server on loopback, in this event loop."""
    await migrated(settings)
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def open_stream(stack: AsyncExitStack, client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await stack.enter_async_context(client.stream("GET", url))
    assert response.status_code == 200, await response.aread()
    return response


async def test_many_streams_over_http_cost_one_round_a_tick_and_no_connection(
    settings: Settings,
) -> None:
    async with served(settings) as (app, base), httpx.AsyncClient(timeout=30) as client:
        res: Resources = app.state.resources
        job_id = await add_job(res)
        streams = settings.max_event_streams
        async with AsyncExitStack() as stack:
            for _ in range(streams):
                await open_stream(stack, client, f"{base}/v1/jobs/{job_id}/events")
            await asyncio.sleep(2 * TICK_S)  # every stream has had its first state
            window_s = 3.0
            with selects(res.engine) as seen:
                started = time.monotonic()
                await asyncio.sleep(window_s)
                elapsed = time.monotonic() - started
            job_reads = [s for s in seen if "FROM job" in s]
            # Ticks are at least TICK_S apart; a read per stream would be `streams` times more.
            assert len(job_reads) <= elapsed / TICK_S + 1, len(job_reads)
            assert len(seen) <= 3 * (elapsed / TICK_S + 1)
            pool = res.engine.pool
            assert isinstance(pool, QueuePool)
            assert pool.checkedout() <= 1  # the watcher's tick, at most

            refused = await client.get(f"{base}/v1/jobs/{job_id}/events")
            assert refused.status_code == 429
            assert "VTX_MAX_EVENT_STREAMS" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0


async def test_a_stream_ends_after_its_lifetime_and_gives_its_slot_back(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"event_stream_max_s": 1.5, "max_event_streams": 1})
    async with served(settings) as (app, base), httpx.AsyncClient(timeout=30) as client:
        job_id = await add_job(app.state.resources)
        started = time.monotonic()
        # An overall deadline: keep-alives would keep a per-read timeout from ever firing.
        response = await asyncio.wait_for(client.get(f"{base}/v1/jobs/{job_id}/events"), 30)
        assert response.status_code == 200
        assert time.monotonic() - started >= 1.5
        blocks = [b for b in response.text.split("\n\n") if b]
        assert blocks[0] == "retry: 2000"
        assert blocks[1].startswith("id: 1\nevent: status\ndata: ")
        assert json.loads(blocks[1].split("data: ", 1)[1])["status"] == "transcribing"
        assert all("completed" not in b for b in blocks)  # ended by the lifetime, not the job
        again = await asyncio.wait_for(client.get(f"{base}/v1/jobs/{job_id}/events"), 30)
        assert again.status_code == 200  # the one slot came back


def sse_blocks(text: str) -> list[dict[str, str]]:
    """The events of an SSE body, each as its fields (comments and retry dropped)."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append(fields)
    return events


async def test_the_list_stream_over_http_tells_each_job_then_ready_then_their_ends(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"event_stream_max_s": 4.0})
    async with served(settings) as (app, base), httpx.AsyncClient(timeout=30) as client:
        res: Resources = app.state.resources
        jobs = [await add_job(res) for _ in range(2)]

        async def end_them() -> None:
            await asyncio.sleep(1.0)
            await set_status(res, jobs[0], JobStatus.completed)
            await delete_job(res, jobs[1])

        ender = asyncio.create_task(end_them())
        response = await asyncio.wait_for(client.get(f"{base}/v1/events"), 30)
        await ender
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_blocks(response.text)
        names = [e["event"] for e in events]
        assert names[:3] == ["status", "status", "ready"], names
        assert {json.loads(e["data"])["id"] for e in events[:2]} == set(jobs)
        assert json.loads(events[2]["data"]) == {"unfinished": 2}
        assert sorted(names[3:]) == ["completed", "deleted"], names
        ended = {e["event"]: json.loads(e["data"]) for e in events[3:]}
        assert ended["completed"]["id"] == jobs[0]
        assert ended["deleted"] == {"id": jobs[1], "status": "deleted"}

        spec = (await client.get(f"{base}/openapi.json")).json()
        answer = spec["paths"]["/v1/events"]["get"]["responses"]
        assert "text/event-stream" in answer["200"]["content"]
        assert "429" in answer


async def test_the_list_stream_counts_against_the_stream_cap(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_event_streams": 1})
    async with served(settings) as (app, base), httpx.AsyncClient(timeout=30) as client:
        job_id = await add_job(app.state.resources)
        async with AsyncExitStack() as stack:
            await open_stream(stack, client, f"{base}/v1/events")
            refused = await client.get(f"{base}/v1/jobs/{job_id}/events")
            assert refused.status_code == 429
            refused = await client.get(f"{base}/v1/events")
            assert refused.status_code == 429
            assert "VTX_MAX_EVENT_STREAMS" in refused.json()["detail"]
