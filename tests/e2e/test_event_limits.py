"""Event streams are bounded over HTTP: a key holds at most `VTX_MAX_EVENT_STREAMS` at
once (the next is 429), its slots are its own, and every stream still follows its job to
the end. The list stream (`/v1/events`) is one of those slots, and tells a key of its own
jobs only. The services run as separate processes (tests/e2e/harness.py) so that a job can
wait, queued, with no worker started: its streams stay open as long as the test needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from shared import apikeys, db
from shared.config import Settings
from tests.databases import PostgresServer
from tests.e2e.harness import Cluster, running_cluster
from tests.e2e.test_events_and_callbacks import read_events

pytestmark = pytest.mark.one_database

MAX_STREAMS = 3


async def _new_keys(settings: Settings, *names: str) -> list[str]:
    engine = db.create_engine(settings)
    try:
        async with db.session_factory(engine)() as session:
            return [(await apikeys.create(session, name)).key for name in names]
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[tuple[Cluster, list[dict[str, str]]]]:
    """The gateway alone (jobs stay queued until a test starts the workers), two keys."""
    root = tmp_path_factory.mktemp("event-limits")
    env = {
        "VTX_MAX_EVENT_STREAMS": str(MAX_STREAMS),
        "VTX_CHUNK_SECONDS": "10",
        "VTX_TRANSCRIBER_PROCESSES": "1",
        "VTX_TRANSCRIBER_WORKERS": "1",
    }
    with running_cluster(root, postgres, (), **env) as cluster:
        keys = asyncio.run(_new_keys(cluster.settings, "alice", "bob"))
        cluster.start("gateway")
        yield cluster, [{"Authorization": f"Bearer {key}"} for key in keys]


def submit(cluster: Cluster, path: Path, headers: dict[str, str]) -> str:
    with path.open("rb") as handle:
        response = httpx.post(
            f"{cluster.gateway}/v1/jobs", files={"file": handle}, headers=headers, timeout=60
        )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def open_stream(
    stack: ExitStack, client: httpx.Client, url: str, headers: dict[str, str]
) -> httpx.Response:
    response = stack.enter_context(client.stream("GET", url, headers=headers))
    assert response.status_code == 200, response.read()
    return response


def follow(response: httpx.Response) -> list[tuple[str, dict[str, object]]]:
    return list(read_events(response))


def test_a_key_past_its_streams_gets_429_until_it_closes_one(
    keyed: tuple[Cluster, list[dict[str, str]]], speech_mp4: Path
) -> None:
    cluster, (alice, bob) = keyed
    url = f"{cluster.gateway}/v1/jobs/{submit(cluster, speech_mp4, alice)}/events"
    bobs_url = f"{cluster.gateway}/v1/jobs/{submit(cluster, speech_mp4, bob)}/events"
    with httpx.Client(timeout=30) as client, ExitStack() as held:
        streams = [open_stream(held, client, url, alice) for _ in range(MAX_STREAMS)]
        with client.stream("GET", url, headers=alice) as refused:
            assert refused.status_code == 429, "a stream past the key's limit was let through"
            refused.read()
        assert "VTX_MAX_EVENT_STREAMS" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) > 0
        with ExitStack() as bobs:
            open_stream(bobs, client, bobs_url, bob)  # alice's full slots are not bob's

        streams[0].close()
        deadline = time.monotonic() + 30
        while True:
            with client.stream("GET", url, headers=alice) as again:
                if again.status_code != 429:
                    break
            assert time.monotonic() < deadline, "closing a stream did not free its slot"
            time.sleep(0.2)
        assert again.status_code == 200


def test_every_stream_follows_its_job_to_completed(
    keyed: tuple[Cluster, list[dict[str, str]]], speech_mp4: Path
) -> None:
    cluster, (alice, _) = keyed
    url = f"{cluster.gateway}/v1/jobs/{submit(cluster, speech_mp4, alice)}/events"
    with ExitStack() as held:
        clients = [held.enter_context(httpx.Client(timeout=180)) for _ in range(MAX_STREAMS)]
        streams = [open_stream(held, client, url, alice) for client in clients]
        with ThreadPoolExecutor(MAX_STREAMS) as pool:
            followed = [pool.submit(follow, response) for response in streams]
            try:
                cluster.start("splitter")
                cluster.start("transcriber")
                seen = [future.result(timeout=180) for future in followed]
            finally:
                cluster.terminate("transcriber")
                cluster.terminate("splitter")
    for events in seen:
        names = [name for name, _ in events]
        assert names[0] == "status" and names[-1] == "completed", names
        chunks = [job["progress"]["chunks_done"] for _, job in events]  # type: ignore[index]
        assert chunks == sorted(chunks) and len(set(chunks)) >= 2, events


def until(events: Iterator[tuple[str, dict[str, object]]], name: str) -> list[str]:
    """The job ids of the events read up to the first `name` event (that one included)."""
    ids = []
    for event, data in events:
        ids.append(str(data.get("id", "")))
        if event == name:
            return ids
    raise AssertionError(f"the stream ended before a {name!r} event")


def test_the_list_stream_tells_a_key_of_its_own_jobs_only_and_takes_one_slot(
    keyed: tuple[Cluster, list[dict[str, str]]], speech_mp4: Path
) -> None:
    cluster, (alice, bob) = keyed
    hers = submit(cluster, speech_mp4, alice)
    his = submit(cluster, speech_mp4, bob)
    with httpx.Client(timeout=180) as client, ExitStack() as held:
        listing = open_stream(held, client, f"{cluster.gateway}/v1/events", alice)
        events = read_events(listing)
        first = until(events, "ready")
        assert hers in first and his not in first, first
        job_url = f"{cluster.gateway}/v1/jobs/{hers}/events"
        for _ in range(MAX_STREAMS - 1):
            open_stream(held, client, job_url, alice)
        with client.stream("GET", f"{cluster.gateway}/v1/events", headers=alice) as refused:
            assert refused.status_code == 429, "the list stream did not count as a slot"
            refused.read()
        assert "VTX_MAX_EVENT_STREAMS" in refused.json()["detail"]

        later = submit(cluster, speech_mp4, alice)  # after the stream opened: told too
        with ThreadPoolExecutor(1) as pool:
            told = pool.submit(completions, events, {hers, later})
            try:
                cluster.start("splitter")
                cluster.start("transcriber")
                seen = told.result(timeout=180)
            finally:
                cluster.terminate("transcriber")
                cluster.terminate("splitter")
        assert later in seen and his not in seen, seen


def completions(events: Iterator[tuple[str, dict[str, object]]], wanted: set[str]) -> list[str]:
    """The job ids of the events read until every job in `wanted` has completed."""
    seen, done = [], set()
    for event, data in events:
        seen.append(str(data.get("id", "")))
        if event == "completed":
            done.add(seen[-1])
        if wanted <= done:
            return seen
    raise AssertionError(f"the stream ended before {wanted - done} completed")
