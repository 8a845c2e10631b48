"""OpenAI requests waiting for their jobs, in process with no workers: one query a tick
reads every waited-on job, and each request gets its job's end, however it ends."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, update
from sqlmodel import col, select

from shared.config import Settings
from shared.models import Job, JobStatus, Transcript, utcnow
from shared.pipeline.contracts import SPLIT_QUEUE
from tests.integration.conftest import gateway_for

# The shape of a read of job rows by id, however many: the old per-request poll and the
# shared one alike.
READ_BY_ID = re.compile(r"FROM job\s+WHERE job\.id (=|IN)", re.I)


def ask(client: httpx.AsyncClient, media: bytes) -> asyncio.Task[httpx.Response]:
    return asyncio.ensure_future(
        client.post(
            "/v1/audio/transcriptions",
            files={"file": ("talk.mp4", media)},
            data={"model": "whisper-1", "response_format": "text"},
            timeout=60,
        )
    )


async def queued(app: FastAPI, count: int) -> None:
    """Until `count` uploads have become jobs (their splits are queued)."""
    while await app.state.resources.queue.zcard(SPLIT_QUEUE) < count:
        await asyncio.sleep(0.02)


async def job_ids(app: FastAPI) -> list[str]:
    async with app.state.resources.sessions() as session:
        return list(await session.exec(select(Job.id)))


async def test_ten_waiting_requests_share_one_read_a_tick(
    settings: Settings, speech_mp4: Path
) -> None:
    settings.openai_wait_s = 2.0
    media = speech_mp4.read_bytes()
    async with gateway_for(settings) as (app, client):
        reads: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if READ_BY_ID.search(statement):
                reads.append(statement)

        waiting = [ask(client, media) for _ in range(10)]
        await queued(app, 10)
        engine = app.state.resources.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        await asyncio.sleep(1.0)
        event.remove(engine, "before_cursor_execute", record)
        answers = await asyncio.gather(*waiting)
    assert [a.status_code for a in answers] == [504] * 10
    assert all("not ready after 2 s" in a.json()["error"]["message"] for a in answers)
    assert 1 <= len(reads) <= 6, f"{len(reads)} reads in 1 s for 10 waiting requests"


async def test_each_request_gets_its_own_jobs_end(settings: Settings, speech_mp4: Path) -> None:
    settings.openai_wait_s = 30.0
    media = speech_mp4.read_bytes()
    async with gateway_for(settings) as (app, client):
        waiting = [ask(client, media) for _ in range(3)]
        await queued(app, 3)
        done, failed, deleted = await job_ids(app)
        async with app.state.resources.sessions() as session:
            session.add(Transcript(job_id=done, segments=[_segment("All is well.")]))
            await session.exec(_end(done, JobStatus.completed))
            await session.exec(_end(failed, JobStatus.failed, error="The audio track is empty."))
            await session.commit()
        assert (await client.delete(f"/v1/jobs/{deleted}")).status_code == 204
        results = await asyncio.gather(*waiting)
    ok, bad, gone = sorted(results, key=lambda r: r.status_code)
    assert (ok.status_code, ok.text.strip()) == (200, "All is well.")
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "The audio track is empty."
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == f"The job {deleted} was deleted while it ran."


def _end(job_id: str, status: JobStatus, error: str | None = None) -> Any:
    return (
        update(Job)
        .where(col(Job.id) == job_id)
        .values(status=status.value, error=error, finished_at=utcnow(), chunks_total=1)
    )


def _segment(text: str) -> dict[str, Any]:
    return {"id": 0, "start": 0.0, "end": 1.0, "text": text, "words": []}
