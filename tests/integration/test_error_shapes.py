"""One error shape per API, through the real gateway: FastAPI's own 422s, a full disk
while an upload spools, an unexpected fault, and an OpenAPI document that lists what
the routes answer."""

from __future__ import annotations

import errno
import os
from typing import Any

import httpx
import pytest

from services.gateway import uploads
from services.gateway.errors import SERVER_FAULT
from services.gateway.main import create_app
from services.gateway.problems import StorageFull
from shared.config import Settings
from tests.integration.conftest import gateway_for, migrated

SPOOL_PATH = "/srv/vtx-secret/spool/upload-abc123"  # what a full disk's OSError would name


class _FullDisk:
    """The spool file on a disk with no room left: the first write fails as Linux does."""

    async def __aenter__(self) -> _FullDisk:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), SPOOL_PATH)


async def _open_on_a_full_disk(path: object, mode: str) -> _FullDisk:
    return _FullDisk()


def _no_internals(text: str) -> None:
    for leak in (SPOOL_PATH, "Errno", os.strerror(errno.ENOSPC), "OSError"):
        assert leak not in text


async def test_a_fastapi_422_has_a_string_detail_and_lists_every_error(settings: Settings) -> None:
    async with gateway_for(settings) as (_, client):
        answer = await client.get("/v1/jobs", params={"limit": "many", "offset": "-1"})
        document = (await client.get("/openapi.json")).json()
    assert answer.status_code == 422
    body = answer.json()
    assert body["detail"] == "limit: 'many' is not a whole number of at most 18 digits"
    assert [e["loc"] for e in body["errors"]] == [["query", "limit"], ["query", "offset"]]
    assert all(isinstance(e["msg"], str) and isinstance(e["type"], str) for e in body["errors"])
    documented = document["paths"]["/v1/jobs"]["get"]["responses"]["422"]
    assert documented["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize(
    ("path", "fields"),
    [("/v1/jobs", {}), ("/v1/audio/transcriptions", {"model": "whisper-1"})],
)
async def test_a_full_disk_while_spooling_is_507_logged_without_internals(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    path: str,
    fields: dict[str, str],
) -> None:
    monkeypatch.setattr(uploads.anyio, "open_file", _open_on_a_full_disk)
    async with gateway_for(settings) as (_, client):
        answer = await client.post(
            path,
            data=fields,
            files={"file": ("talk.mp4", b"\x00" * 4096)},
            headers={"X-Request-ID": "full-disk-42"},
        )
    assert answer.status_code == 507
    body: dict[str, Any] = answer.json()
    message = body["error"]["message"] if path.startswith("/v1/audio") else body["detail"]
    assert message == StorageFull().message
    _no_internals(answer.text)
    assert not list(settings.uploads_dir.glob("upload-*"))  # the spool file is gone
    logged = [line for line in capsys.readouterr().err.splitlines() if "request.fault" in line]
    assert logged and "full-disk-42" in logged[0]


async def test_an_unexpected_fault_is_500_logged_without_internals(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError(f"database password in {SPOOL_PATH}")

    monkeypatch.setattr("services.gateway.api.routes.jobs.check_before_upload", broken)
    await migrated(settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answer = await client.post(
                "/v1/jobs", files={"file": ("a.mp4", b"x")}, headers={"X-Request-ID": "fault-7"}
            )
    assert answer.status_code == 500
    assert answer.json() == {"detail": SERVER_FAULT}
    assert "password" not in answer.text and SPOOL_PATH not in answer.text
    logged = [line for line in capsys.readouterr().err.splitlines() if "request.fault" in line]
    assert logged and "fault-7" in logged[0] and "RuntimeError" in logged[0]


async def test_openapi_lists_what_the_audio_routes_answer_and_nothing_else(
    settings: Settings,
) -> None:
    async with gateway_for(settings) as (_, client):
        document = (await client.get("/openapi.json")).json()
    answers = {"200", "400", "401", "404", "413", "415", "422", "429", "503", "504", "507"}
    for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        responses = document["paths"][path]["post"]["responses"]
        assert set(responses) == answers, path  # 500 only for a fault, never on purpose
        for code in answers - {"200"}:
            schema = responses[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/OpenAIError"}, (path, code)
    assert set(document["paths"]["/v1/models"]["get"]["responses"]) == {"200", "401", "429"}
    assert "507" in document["paths"]["/v1/jobs"]["post"]["responses"]
