"""API keys on a suite of their own: keys change the whole suite's mode (VTX_AUTH=auto),
so these tests do not share the open suite the other end-to-end tests use."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import recall
from tests.databases import PostgresServer
from tests.e2e.conftest import Suite, running_suite

RATE = 30


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Suite]:
    with running_suite(
        tmp_path_factory.mktemp("keyed"),
        postgres,
        VTX_RATE_LIMIT_PER_MINUTE=str(RATE),
        VTX_MAX_ACTIVE_JOBS="1",
    ) as suite:
        # Open until the first key exists, as `vtx up` announces.
        assert httpx.get(f"{suite.gateway}/v1/jobs").status_code == 200
        deadline = time.monotonic() + 20
        while "No API key exists" not in suite.log.read_text():
            assert time.monotonic() < deadline, suite.log.read_text()[-2000:]
            time.sleep(0.1)
        yield suite


def new_key(suite: Suite, name: str) -> dict[str, str]:
    made: dict[str, str] = json.loads(suite.vtx("keys", "create", name, "--json"))
    return made


def auth(key: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def submit(suite: Suite, path: Path, key: dict[str, str]) -> httpx.Response:
    with path.open("rb") as handle:
        return httpx.post(
            f"{suite.gateway}/v1/jobs", files={"file": handle}, headers=auth(key), timeout=60
        )


def test_a_key_sees_only_its_own_jobs(keyed: Suite, speech_mp4: Path) -> None:
    alice, bob = new_key(keyed, "alice"), new_key(keyed, "bob")
    assert httpx.get(f"{keyed.gateway}/v1/jobs").status_code == 401  # keys are on now
    response = submit(keyed, speech_mp4, alice)
    assert response.status_code == 202, response.text
    job = response.json()
    for path in ("", "/transcript", "/events", "/media"):
        url = f"{keyed.gateway}/v1/jobs/{job['id']}{path}"
        assert httpx.get(url, headers=auth(bob)).status_code == 404, path
    assert (
        httpx.delete(f"{keyed.gateway}/v1/jobs/{job['id']}", headers=auth(bob)).status_code == 404
    )
    assert httpx.get(f"{keyed.gateway}/v1/jobs", headers=auth(bob)).json()["total"] == 0
    mine = httpx.get(f"{keyed.gateway}/v1/jobs", headers=auth(alice)).json()
    assert [j["id"] for j in mine["items"]] == [job["id"]]
    done = keyed.wait_for(job["id"], headers=auth(alice))
    assert done["status"] == "completed"

    # A <video> cannot send the header: the media link carries a token for this job.
    media = str(done["links"]["media"])  # type: ignore[index]
    assert "?token=" in media
    assert httpx.get(f"{keyed.gateway}{media}").status_code == 200
    assert httpx.get(f"{keyed.gateway}{media[:-3]}xyz").status_code == 401
    assert httpx.get(f"{keyed.gateway}/v1/jobs/{job['id']}/media").status_code == 401


def test_a_revoked_key_is_refused_at_once(keyed: Suite) -> None:
    carol = new_key(keyed, "carol")
    assert httpx.get(f"{keyed.gateway}/v1/jobs", headers=auth(carol)).status_code == 200
    keyed.vtx("keys", "revoke", carol["id"])
    refused = httpx.get(f"{keyed.gateway}/v1/jobs", headers=auth(carol))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    listed = json.loads(keyed.vtx("keys", "list", "--json"))
    assert {k["name"]: bool(k["revoked_at"]) for k in listed}["carol"] is True
    assert all("key" not in k and "webhook_secret" not in k for k in listed)  # shown once
    # Revoked keys still count: keys stay required (only VTX_AUTH=off opens the API).
    assert httpx.get(f"{keyed.gateway}/v1/jobs").status_code == 401


def test_a_key_comes_with_its_own_webhook_secret_and_quota_overrides(keyed: Suite) -> None:
    made = json.loads(
        keyed.vtx("keys", "create", "ivan", "--json", "--audio-hours", "2.5", "--storage-gb", "0")
    )
    assert made["webhook_secret"].startswith("whsec_") and len(made["webhook_secret"]) > 40
    assert made["quota_audio_hours"] == 2.5 and made["quota_storage_gb"] == 0
    plain = new_key(keyed, "judy")
    assert plain["webhook_secret"] != made["webhook_secret"]
    assert plain["quota_audio_hours"] is None and plain["quota_storage_gb"] is None
    listed = {k["name"]: k for k in json.loads(keyed.vtx("keys", "list", "--json"))}
    assert listed["ivan"]["quota_audio_hours"] == 2.5 and listed["ivan"]["quota_storage_gb"] == 0
    assert listed["judy"]["quota_audio_hours"] is None
    table = keyed.vtx("keys", "list")
    assert "audio" in table and "2.5" in table and "unlimited" in table
    shown = keyed.vtx("keys", "create", "ken")  # the human form shows both secrets once
    assert "vtx_" in shown and "whsec_" in shown


def test_the_rate_limit_answers_429_with_retry_after(keyed: Suite) -> None:
    dave = new_key(keyed, "dave")
    with httpx.Client(base_url=keyed.gateway, headers=auth(dave)) as client:
        codes = []
        for _ in range(2 * RATE + 2):  # enough to pass the limit within one minute window
            response = client.get("/v1/models")
            codes.append(response.status_code)
            if response.status_code == 429:
                break
    assert codes[-1] == 429, codes
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    other = new_key(keyed, "erin")  # other keys are not affected
    assert httpx.get(f"{keyed.gateway}/v1/models", headers=auth(other)).status_code == 200


def test_unfinished_jobs_per_key_are_limited(keyed: Suite, speech_mp4: Path) -> None:
    frank = new_key(keyed, "frank")
    first = submit(keyed, speech_mp4, frank)
    assert first.status_code == 202
    second = submit(keyed, speech_mp4, frank)  # VTX_MAX_ACTIVE_JOBS=1
    assert second.status_code == 429, second.text
    assert int(second.headers["retry-after"]) > 0
    keyed.wait_for(first.json()["id"], headers=auth(frank))
    third = submit(keyed, speech_mp4, frank)
    assert third.status_code == 202
    keyed.wait_for(third.json()["id"], headers=auth(frank))


def test_the_openai_sdk_with_a_wrong_key_gets_its_authentication_error(
    keyed: Suite, speech_mp4: Path, speech_words: list[str]
) -> None:
    new_key(keyed, "grace")  # keys are on whatever the test order
    client = OpenAI(base_url=f"{keyed.gateway}/v1", api_key="vtx_wrong", max_retries=0)
    with speech_mp4.open("rb") as media, pytest.raises(openai.AuthenticationError) as refused:
        client.audio.transcriptions.create(model="whisper-1", file=media)
    assert refused.value.code == "invalid_api_key"
    good = new_key(keyed, "heidi")
    client = OpenAI(base_url=f"{keyed.gateway}/v1", api_key=good["key"], max_retries=0)
    with speech_mp4.open("rb") as media:
        text = client.audio.transcriptions.create(model="whisper-1", file=media).text
    assert recall(speech_words, text) >= 0.85, text
