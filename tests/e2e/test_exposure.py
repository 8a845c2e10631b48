"""Exposure over HTTP: keys that stay required, Host names and origins the gateway refuses,
media links that die with their key, and a rate limiter that fails open only on purpose.

Traffic goes only to 127.0.0.1: foreign names are sent as a `Host` or `Origin` header,
and the starts bound beyond loopback are refused before anything listens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.databases import PostgresServer
from tests.e2e.conftest import Suite, suite_env
from tests.e2e.harness import Cluster, running_cluster

pytestmark = pytest.mark.one_database

EVIL = "http://evil.example"
UNKNOWN_JOB = "0" * 32


@pytest.fixture(scope="module")
def locked(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Cluster]:
    """A gateway of its own (no workers: media exists from upload on), keys soon made."""
    root = tmp_path_factory.mktemp("locked")
    with running_cluster(root, postgres, ("gateway",), VTX_RATE_LIMIT_PER_MINUTE="1000") as gw:
        yield gw


def vtx(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def new_key(cluster: Cluster, name: str) -> dict[str, str]:
    made: dict[str, str] = json.loads(vtx(cluster.env, "keys", "create", name, "--json"))
    return made


def auth(key: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def upload(cluster: Cluster, media: Path, key: dict[str, str]) -> dict[str, object]:
    with media.open("rb") as handle:
        response = httpx.post(
            f"{cluster.gateway}/v1/jobs", files={"file": handle}, headers=auth(key), timeout=60
        )
    assert response.status_code == 202, response.text
    job: dict[str, object] = response.json()
    return job


def media_link(job: dict[str, object]) -> str:
    links = job["links"]
    assert isinstance(links, dict)
    return str(links["media"])


# ------------------------------------------------------------- locked stays locked
def test_a_media_link_is_bound_to_its_job_and_dies_with_its_key(
    locked: Cluster, speech_mp4: Path
) -> None:
    alice, bob = new_key(locked, "alice"), new_key(locked, "bob")
    job_a, job_b = upload(locked, speech_mp4, alice), upload(locked, speech_mp4, bob)
    link_a, link_b = media_link(job_a), media_link(job_b)
    assert httpx.get(f"{locked.gateway}{link_a}").status_code == 200
    token = link_a.partition("?token=")[2]
    for job_id in (job_b["id"], UNKNOWN_JOB):  # A's token opens no other job
        other = f"{locked.gateway}/v1/jobs/{job_id}/media?token={token}"
        assert httpx.get(other).status_code == 401, job_id
    stamp, _, mac = token.partition(".")
    for forged in (f"\u00b2.{mac}", f"{'9' * 5000}.{mac}", f"{stamp}.{'é' * len(mac)}"):
        odd = httpx.get(f"{locked.gateway}/v1/jobs/{job_a['id']}/media", params={"token": forged})
        assert odd.status_code == 401, (forged[:20], odd.text)

    vtx(locked.env, "keys", "revoke", alice["id"])
    assert httpx.get(f"{locked.gateway}{link_a}").status_code == 401  # bob's key still stands
    assert httpx.get(f"{locked.gateway}{link_b}").status_code == 200


def test_revoking_the_last_key_keeps_keys_required(locked: Cluster, speech_mp4: Path) -> None:
    carol = new_key(locked, "carol")
    job = upload(locked, speech_mp4, carol)
    for key in json.loads(vtx(locked.env, "keys", "list", "--json")):
        if not key["revoked_at"]:
            vtx(locked.env, "keys", "revoke", key["id"])
    jobs = f"{locked.gateway}/v1/jobs"
    for headers in ({}, auth(carol)):
        assert httpx.get(jobs, headers=headers).status_code == 401
        assert httpx.get(f"{jobs}/{job['id']}", headers=headers).status_code == 401
        media = httpx.get(f"{jobs}/{job['id']}/media", headers=headers)
        assert media.status_code == 401
    assert httpx.get(f"{locked.gateway}{media_link(job)}").status_code == 401
    with speech_mp4.open("rb") as handle:
        assert httpx.post(jobs, files={"file": handle}, timeout=60).status_code == 401


# ------------------------------------------------------------ the rate limiter
def metric(cluster: Cluster, name: str) -> float:
    for line in httpx.get(f"{cluster.gateway}/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


def test_the_rate_limiter_lets_requests_pass_only_while_redis_is_unreachable(
    locked: Cluster,
) -> None:
    dave = new_key(locked, "dave")
    jobs = f"{locked.gateway}/v1/jobs"
    unavailable = "vtx_rate_limit_unavailable_total"
    before = metric(locked, unavailable)

    # A broken counter is a fault to see (500, in the log), not a reason to stop limiting.
    counters = redis.Redis.from_url(locked.redis.url)
    window = int(time.time() // 60)
    for minute in (window, window + 1):
        counters.set(f"vtx:rate:{dave['id']}:{minute}", "not a number", ex=180)
    assert httpx.get(jobs, headers=auth(dave)).status_code == 500
    counters.delete(*(f"vtx:rate:{dave['id']}:{m}" for m in (window, window + 1)))

    locked.redis.stop()
    try:
        assert httpx.get(jobs, headers=auth(dave), timeout=30).status_code == 200
        assert metric(locked, unavailable) >= before + 1
        assert "rate_limit.unavailable" in locked.log_tail("gateway")
    finally:
        locked.redis.start()
    assert httpx.get(jobs, headers=auth(dave), timeout=30).status_code == 200


# --------------------------------------------------------- hosts and origins
def test_a_foreign_host_is_refused_but_probes_and_metrics_answer(suite: Suite) -> None:
    evil = {"Host": "evil.example"}
    for path in ("/v1/jobs", "/", "/docs", "/openapi.json"):
        refused = httpx.get(f"{suite.gateway}{path}", headers=evil)
        assert refused.status_code == 400, path
        assert "VTX_ALLOWED_HOSTS" in refused.json()["detail"], path
    openai = httpx.get(f"{suite.gateway}/v1/models", headers=evil)
    assert openai.status_code == 400 and "VTX_ALLOWED_HOSTS" in openai.json()["error"]["message"]
    for path in ("/health/ready", "/health/live", "/health", "/metrics"):
        assert httpx.get(f"{suite.gateway}{path}", headers=evil).status_code == 200, path
    port = suite.gateway.rpartition(":")[2]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert httpx.get(f"{suite.gateway}/v1/jobs", headers={"Host": host}).status_code == 200


def test_a_cross_origin_change_without_a_key_is_refused(suite: Suite, speech_mp4: Path) -> None:
    jobs = f"{suite.gateway}/v1/jobs"
    with speech_mp4.open("rb") as handle:
        refused = httpx.post(jobs, files={"file": handle}, headers={"Origin": EVIL}, timeout=60)
    assert refused.status_code == 403 and "evil.example" in refused.json()["detail"]
    with speech_mp4.open("rb") as handle:
        site = httpx.post(
            jobs, files={"file": handle}, headers={"Sec-Fetch-Site": "cross-site"}, timeout=60
        )
    assert site.status_code == 403
    with speech_mp4.open("rb") as handle:
        openai = httpx.post(
            f"{suite.gateway}/v1/audio/transcriptions",
            files={"file": handle},
            data={"model": "whisper-1"},
            headers={"Origin": EVIL},
            timeout=60,
        )
    assert openai.status_code == 403 and openai.json()["error"]["message"]
    deleting = httpx.delete(f"{jobs}/{UNKNOWN_JOB}", headers={"Origin": EVIL})
    assert deleting.status_code == 403
    keyed = {"Origin": EVIL, "Authorization": "Bearer vtx_any"}  # open API: the key is unused
    assert httpx.delete(f"{jobs}/{UNKNOWN_JOB}", headers=keyed).status_code == 404

    own = {"Origin": suite.gateway, "Sec-Fetch-Site": "same-origin"}  # the web page
    with speech_mp4.open("rb") as handle:
        accepted = httpx.post(jobs, files={"file": handle}, headers=own, timeout=60)
    assert accepted.status_code == 202, accepted.text
    done = suite.wait_for(accepted.json()["id"])
    assert done["status"] == "completed"
    assert httpx.delete(f"{jobs}/{done['id']}", headers=own).status_code == 204


# ------------------------------------------------- refusing to start exposed
def run_until_exit(command: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """The exit code and output; a process still running at `timeout` is killed (a failure)."""
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"still running after {timeout} s:\n{output[-3000:]}") from None
    return process.returncode, output


@pytest.fixture
def fresh_env(tmp_path: Path, postgres: PostgresServer | None) -> dict[str, str]:
    """`vtx up`'s settings on a new data folder and database: no key was ever made."""
    database_url = postgres.create_database() if postgres is not None else None
    env = suite_env(tmp_path / "data", database_url)
    env["VTX_HOST"] = "0.0.0.0"  # bound only: refused before anything listens
    return env


def test_vtx_up_beyond_loopback_with_no_key_refuses_to_start(fresh_env: dict[str, str]) -> None:
    code, output = run_until_exit([sys.executable, "-m", "services.cli", "up"], fresh_env, 120)
    assert code != 0, output
    flat = " ".join(output.split())  # the console wraps long lines
    assert "vtx keys create NAME" in flat and "VTX_AUTH=off" in flat, output


def test_the_gateway_beyond_loopback_with_no_key_refuses_to_start(
    fresh_env: dict[str, str], locked: Cluster
) -> None:
    env = {**fresh_env, "VTX_REDIS_URL": locked.redis.url}
    vtx(env, "db", "upgrade")
    command = [sys.executable, "-m", "services.cli", "gateway"]
    code, output = run_until_exit(command, env, 60)
    assert code != 0, output
    assert "exposure.refused" in output and "vtx keys create NAME" in output, output
