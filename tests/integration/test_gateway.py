"""The gateway alone (no workers running), in process, on a real Redis and SQLite."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import event
from sqlmodel import select

from shared.config import Settings
from shared.models import Job
from shared.pipeline.contracts import SPLIT_QUEUE
from tests.integration.conftest import gateway_for


async def test_a_queued_job_has_no_transcript_yet(
    gateway: tuple[FastAPI, httpx.AsyncClient], speech_mp4: Path
) -> None:
    app, client = gateway
    response = await client.post(
        "/v1/jobs",
        files={"file": ("talk.mp4", speech_mp4.read_bytes())},
        data={"language": "en", "chunk_seconds": "30"},
        headers={"X-Request-ID": "trace-me"},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["x-request-id"] == "trace-me"
    assert (job["language"], job["chunk_seconds"]) == ("en", 30)
    transcript = await client.get(f"/v1/jobs/{job['id']}/transcript?format=srt")
    assert transcript.status_code == 409
    assert "not ready" in transcript.json()["detail"]
    res = app.state.resources
    assert await res.queue.zcard(SPLIT_QUEUE) == 1
    stored = res.settings.data_dir / "store" / "media" / job["id"]
    assert stored.read_bytes() == speech_mp4.read_bytes()
    assert not list(res.settings.uploads_dir.iterdir())  # spool emptied


async def test_an_invalid_language_is_refused_before_any_work(
    gateway: tuple[FastAPI, httpx.AsyncClient], speech_mp4: Path
) -> None:
    app, client = gateway
    response = await client.post(
        "/v1/jobs",
        files={"file": ("talk.mp4", speech_mp4.read_bytes())},
        data={"language": "xx-nonsense"},
    )
    assert response.status_code == 422
    assert "language" in response.json()["detail"]
    assert await app.state.resources.queue.zcard(SPLIT_QUEUE) == 0
    assert (await client.get("/v1/jobs")).json()["total"] == 0


async def test_the_openapi_document_describes_the_upload(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = gateway
    spec = (await client.get("/openapi.json")).json()
    post = spec["paths"]["/v1/jobs"]["post"]
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["anyOf"] == [{"required": ["file"]}, {"required": ["url"]}]
    assert {"400", "401", "413", "415", "422", "429"} <= set(post["responses"])


async def test_media_longer_than_the_limit_is_refused_at_upload(
    settings: Settings, speech_mp4: Path
) -> None:
    settings.max_duration_s = 5  # the fixture is longer; its probe says so
    async with gateway_for(settings) as (app, client):
        response = await client.post(
            "/v1/jobs", files={"file": ("talk.mp4", speech_mp4.read_bytes())}
        )
        assert response.status_code == 413, response.text
        assert "VTX_MAX_DURATION_S" in response.json()["detail"]
        assert await app.state.resources.queue.zcard(SPLIT_QUEUE) == 0
        assert not list(settings.uploads_dir.iterdir())  # nothing kept of it


async def _vad_of_new_job(client: httpx.AsyncClient, speech_mp4: Path, **data: str) -> bool:
    """Upload with these fields; the `vad` the job's row holds (read back over the API)."""
    response = await client.post(
        "/v1/jobs", files={"file": ("talk.mp4", speech_mp4.read_bytes())}, data=data
    )
    assert response.status_code == 202, response.text
    assert response.json()["vad"] == (await client.get(response.headers["location"])).json()["vad"]
    vad: bool = response.json()["vad"]
    return vad


async def test_a_request_sets_vad_and_without_it_the_server_default_holds(
    gateway: tuple[FastAPI, httpx.AsyncClient], speech_mp4: Path
) -> None:
    app, client = gateway
    assert app.state.resources.settings.vad is True
    assert await _vad_of_new_job(client, speech_mp4) is True
    assert await _vad_of_new_job(client, speech_mp4, vad="false") is False
    assert await _vad_of_new_job(client, speech_mp4, vad="true") is True
    rows = await _vad_rows(app)
    assert sorted(rows) == [False, True, True]


async def test_vtx_vad_false_is_the_default_a_request_may_override(
    settings: Settings, speech_mp4: Path
) -> None:
    settings.vad = False
    async with gateway_for(settings) as (app, client):
        assert await _vad_of_new_job(client, speech_mp4) is False
        assert await _vad_of_new_job(client, speech_mp4, vad="true") is True
        assert sorted(await _vad_rows(app)) == [False, True]


async def test_a_vad_that_is_not_a_boolean_is_refused_before_any_work(
    gateway: tuple[FastAPI, httpx.AsyncClient], speech_mp4: Path
) -> None:
    app, client = gateway
    response = await client.post(
        "/v1/jobs",
        files={"file": ("talk.mp4", speech_mp4.read_bytes())},
        data={"vad": "sometimes"},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "Invalid form field: vad: 'sometimes' is not a boolean: send true or false."
    )
    assert await app.state.resources.queue.zcard(SPLIT_QUEUE) == 0
    assert await _vad_rows(app) == []


async def test_the_openapi_document_offers_vad_on_every_upload(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = gateway
    spec = (await client.get("/openapi.json")).json()
    for path in ("/v1/jobs", "/v1/audio/transcriptions", "/v1/audio/translations"):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert body["schema"]["properties"]["vad"]["type"] == "boolean", path
    job = spec["components"]["schemas"]["JobOut"]["properties"]["vad"]
    assert job["type"] == "boolean" and "VAD" in job["description"]


async def _vad_rows(app: FastAPI) -> list[bool]:
    async with app.state.resources.sessions() as session:
        return list((await session.exec(select(Job.vad))).all())


async def test_reading_a_job_without_a_callback_never_asks_for_its_deliveries(
    gateway: tuple[FastAPI, httpx.AsyncClient], speech_mp4: Path
) -> None:
    app, client = gateway
    plain = await client.post("/v1/jobs", files={"file": ("a.mp4", speech_mp4.read_bytes())})
    hooked = await client.post(
        "/v1/jobs",
        files={"file": ("b.mp4", speech_mp4.read_bytes())},
        data={"callback_url": "https://receiver.example/hook"},
    )
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    engine = app.state.resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert (await client.get(plain.headers["location"])).json()["callback"] is None
        asked_plain = [s for s in sent if "FROM callbackdelivery" in s]
        sent.clear()
        callback = (await client.get(hooked.headers["location"])).json()["callback"]
        asked_hooked = [s for s in sent if "FROM callbackdelivery" in s]
        sent.clear()
        listed = (await client.get("/v1/jobs")).json()["items"]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert asked_plain == [] and len(asked_hooked) == 1
    assert callback["url"] == "https://receiver.example/hook" and callback["deliveries"] == []
    assert len(listed) == 2 and len([s for s in sent if "FROM callbackdelivery" in s]) == 1
