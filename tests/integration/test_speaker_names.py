"""Naming a job's speakers through the gateway, in process, on a real Redis and database.

The job and transcript rows are those the merge writes for a job that asked for
speakers (segments and words carrying S1, S2): the rename's own behaviour is tested
here against them; the whole path with a real speakers service is in
tests/e2e/test_speakers_api.py.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from shared import apikeys
from shared.models import Diarization, Job, JobStatus, Transcript, utcnow

SEGMENTS: list[dict[str, Any]] = [
    {
        "id": 0,
        "start": 0.0,
        "end": 1.5,
        "text": " Good morning.",
        "speaker": "S1",
        "words": [
            {"start": 0.0, "end": 0.7, "word": " Good", "speaker": "S1"},
            {"start": 0.7, "end": 1.5, "word": " morning.", "speaker": "S1"},
        ],
    },
    {
        "id": 1,
        "start": 1.6,
        "end": 3.0,
        "text": " Hello there.",
        "speaker": "S2",
        "words": [
            {"start": 1.6, "end": 2.2, "word": " Hello", "speaker": "S2"},
            {"start": 2.2, "end": 3.0, "word": " there.", "speaker": "S2"},
        ],
    },
]


async def _completed(app: FastAPI, owner: str | None = None, speakers: str | None = "auto") -> str:
    res = app.state.resources
    job = Job(
        media_key="media/x",
        filename="talk.wav",
        size_bytes=10,
        chunk_seconds=10,
        status=JobStatus.completed,
        speakers=speakers,
        speaker_route="voices" if speakers else None,
        owner_id=owner,
        duration_s=3.0,
        finished_at=utcnow(),
    )
    async with res.sessions() as session:
        session.add(job)
        await session.commit()
        session.add(Transcript(job_id=job.id, segments=SEGMENTS, duration_s=3.0, language="en"))
        await session.commit()
    return job.id


async def test_names_are_stored_merged_and_shown_on_the_job(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = gateway
    job_id = await _completed(app)
    url = f"/v1/jobs/{job_id}"
    first = await client.patch(url, json={"speaker_names": {"S2": " Bo ", "S1": "Ana"}})
    assert first.status_code == 200, first.text
    assert first.json()["speaker_names"] == {"S1": "Ana", "S2": "Bo"}
    assert (first.json()["speakers"], first.json()["speaker_route"]) == ("auto", "voices")

    merged = await client.patch(
        url,
        content=b'{"speaker_names": {"S2": null}}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert merged.json()["speaker_names"] == {"S1": "Ana"}
    assert (await client.get(url)).json()["speaker_names"] == {"S1": "Ana"}
    async with app.state.resources.sessions() as session:
        stored = await session.get(Job, job_id)
        assert stored is not None and stored.speaker_names == {"S1": "Ana"}

    unknown = await client.patch(url, json={"speaker_names": {"S3": "Cy", "S1": "Ann"}})
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == (
        f"speaker_names: S3 is not a speaker of job {job_id} (it has S1, S2)."
    )
    assert (await client.get(url)).json()["speaker_names"] == {"S1": "Ana"}  # all or nothing

    cleared = await client.patch(url, json={"speaker_names": None})
    assert cleared.json()["speaker_names"] == {}


async def test_downloads_use_the_names_and_json_keeps_the_labels(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = gateway
    job_id = await _completed(app)
    url = f"/v1/jobs/{job_id}"
    assert (await client.patch(url, json={"speaker_names": {"S1": "Ana"}})).status_code == 200
    doc = (await client.get(f"{url}/transcript")).json()
    assert [s["speaker"] for s in doc["segments"]] == ["S1", "S2"]
    assert {w["speaker"] for w in doc["segments"][0]["words"]} == {"S1"}
    assert doc["speakers"] == [
        {"id": "S1", "name": "Ana", "seconds": 1.5},
        {"id": "S2", "name": None, "seconds": 1.4},
    ]
    for fmt in ("txt", "srt", "vtt", "tsv", "diarized_json"):
        body = (await client.get(f"{url}/transcript", params={"format": fmt})).text
        assert "Good morning." in body and "Ana" in body and "S2" in body, (fmt, body)
        assert "S1" not in body, (fmt, body)
    vtt = (await client.get(f"{url}/transcript", params={"format": "vtt"})).text
    assert "<v Ana>" in vtt and "<v S2>" in vtt, vtt


async def test_only_a_completed_job_with_speakers_has_names(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = gateway
    names = {"speaker_names": {"S1": "Ana"}}
    off = await _completed(app, speakers=None)
    refused = await client.patch(f"/v1/jobs/{off}", json=names)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "This job was transcribed without speakers (speakers=off): none to name."
    )
    running = await _completed(app)
    async with app.state.resources.sessions() as session:
        job = await session.get(Job, running)
        assert job is not None
        job.status = JobStatus.transcribing
        session.add(job)
        await session.commit()
    early = await client.patch(f"/v1/jobs/{running}", json=names)
    assert early.status_code == 409
    assert "once it completes" in early.json()["detail"]


async def test_another_keys_job_cannot_be_renamed(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = gateway
    async with app.state.resources.sessions() as session:
        mine = await apikeys.create(session, "mine")
        theirs = await apikeys.create(session, "theirs")
    job_id = await _completed(app, owner=theirs.row.id)
    names = {"speaker_names": {"S1": "Ana"}}
    anonymous = await client.patch(f"/v1/jobs/{job_id}", json=names)
    assert anonymous.status_code == 401
    other = await client.patch(
        f"/v1/jobs/{job_id}", json=names, headers={"Authorization": f"Bearer {mine.key}"}
    )
    assert other.status_code == 404
    own = await client.patch(
        f"/v1/jobs/{job_id}", json=names, headers={"Authorization": f"Bearer {theirs.key}"}
    )
    assert own.status_code == 200 and own.json()["speaker_names"] == {"S1": "Ana"}


async def test_a_job_with_its_diarization_is_deleted_whole(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = gateway
    job_id = await _completed(app)
    turns = [
        {"start": 0.0, "end": 1.5, "speaker": "S1"},
        {"start": 1.6, "end": 3.0, "speaker": "S2"},
    ]
    async with app.state.resources.sessions() as session:
        session.add(Diarization(job_id=job_id, status="done", turns=turns))
        await session.commit()
    assert (await client.delete(f"/v1/jobs/{job_id}")).status_code == 204
    async with app.state.resources.sessions() as session:
        assert await session.get(Diarization, job_id) is None
        assert await session.get(Job, job_id) is None
