"""`vtx up` supervises: a killed service comes back (its children with it, none left
holding its port), and so does a killed embedded Redis; the job under way ends as if
nothing happened, and Ctrl-C stops everything in order with exit code 0."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.databases import PostgresServer
from tests.e2e.conftest import Suite, launched_suite
from tests.e2e.test_fairness import repeated_wav

RESTARTABLE = {
    "VTX_TRANSCRIBER_PROCESSES": "2",  # uvicorn's worker processes: children to orphan
    "VTX_TRANSCRIBER_WORKERS": "1",
    "VTX_CHUNK_SECONDS": "5",
    "VTX_LEASE_S": "3",
    "VTX_RECONCILE_INTERVAL_S": "0.5",
    "VTX_MAX_UPLOAD_MB": "64",
}

Supervised = tuple[Suite, subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def supervised(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Supervised]:
    root = tmp_path_factory.mktemp("supervised")
    with launched_suite(root, postgres, stop_timeout_s=120, **RESTARTABLE) as pair:
        yield pair


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory, speech_mp4: Path) -> Path:
    return repeated_wav(speech_mp4, 4, tmp_path_factory.mktemp("long") / "long.wav")


@pytest.fixture(scope="module")
def reference(supervised: Supervised, long_wav: Path) -> list[dict[str, Any]]:
    """The long file's transcript from an undisturbed run."""
    suite, _ = supervised
    job_id = submit(suite, long_wav)
    assert finished(suite, job_id) == "completed"
    return transcript(suite, job_id)


def submit(suite: Suite, path: Path) -> str:
    with path.open("rb") as handle:
        response = httpx.post(f"{suite.gateway}/v1/jobs", files={"file": handle}, timeout=60)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def transcript(suite: Suite, job_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}/transcript", timeout=10)
    assert response.status_code == 200, response.text
    segments: list[dict[str, Any]] = response.json()["segments"]
    return segments


def progress(suite: Suite, job_id: str) -> dict[str, Any]:
    job = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}", timeout=10).json()
    facts: dict[str, Any] = job["progress"]
    return facts


def finished(suite: Suite, job_id: str, timeout: float = 600) -> str:
    """The job's end state; on a timeout, what it was doing and what the log said."""
    try:
        return str(suite.wait_for(job_id, timeout=timeout)["status"])
    except AssertionError as exc:
        job = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}", timeout=10).json()
        tail = suite.log.read_text(errors="replace")[-6000:]
        raise AssertionError(f"{exc}: {job['status']} {job['progress']}\n{tail}") from exc


def service_process(up: subprocess.Popen[bytes], name: str) -> psutil.Process:
    """The service's own process: the child of `vtx up` that runs `vtx <name>`."""
    for child in psutil.Process(up.pid).children():
        if child.cmdline()[-2:] == ["services.cli", name]:
            return child
    raise AssertionError(f"no {name} process under vtx up")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, [p for p in pids if not gone(p)]
        time.sleep(0.1)


def transcriber_states(suite: Suite, timeout: float = 180) -> list[str]:
    """The aggregator's word on the transcriber, polled until it is ok after not being."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = httpx.get(f"{suite.urls['health']}/health/detailed", timeout=10).json()
        state = document["services"]["transcriber"]["status"]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == "ok" and len(seen) > 1:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"the transcriber did not come back: {seen}")


def listeners(port: int) -> set[int]:
    return {
        c.pid
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
    }


def line_of(lines: list[str], prefix: str) -> int:
    found = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    assert found, f"no line starts with {prefix!r} in vtx up's log after Ctrl-C"
    return found[0]


def under_way(suite: Suite, path: Path) -> str:
    """A job of the long file with some of its chunks done and most still to do."""
    job_id = submit(suite, path)
    deadline = time.monotonic() + 120
    while not (2 <= progress(suite, job_id)["chunks_done"] <= 10):
        assert time.monotonic() < deadline, progress(suite, job_id)
        time.sleep(0.05)
    return job_id


def test_a_killed_transcriber_comes_back_and_its_job_ends_as_undisturbed(
    supervised: Supervised, long_wav: Path, reference: list[dict[str, Any]]
) -> None:
    suite, up = supervised
    job_id = under_way(suite, long_wav)
    top = service_process(up, "transcriber")
    old = [top.pid, *(p.pid for p in top.children(recursive=True))]
    assert len(old) >= 3, "expected uvicorn's two worker processes under the transcriber"
    os.kill(top.pid, signal.SIGKILL)

    states = transcriber_states(suite)
    assert "restarting" in states, states
    wait_gone(old)
    back = service_process(up, "transcriber")
    port = int(suite.env["VTX_TRANSCRIBER_PORT"])
    assert listeners(port) <= {back.pid, *(p.pid for p in back.children(recursive=True))}

    assert finished(suite, job_id) == "completed"
    assert transcript(suite, job_id) == reference
    log = suite.log.read_text(errors="replace")
    assert "the transcriber exited with code -9; restarting" in log
    assert "stopping the suite" not in log
    metrics = httpx.get(f"{suite.urls['health']}/metrics", timeout=10).text
    assert 'vtx_service_restarts_total{service="transcriber"} 1.0' in metrics
    suite.assert_healthy()


def redis_process(up: subprocess.Popen[bytes]) -> psutil.Process | None:
    for child in psutil.Process(up.pid).children():
        if child.name().startswith("redis-server"):  # its title is rewritten, not its name
            return child
    return None


def test_a_killed_redis_comes_back_and_the_job_under_way_ends_as_undisturbed(
    supervised: Supervised, long_wav: Path, reference: list[dict[str, Any]]
) -> None:
    suite, up = supervised
    job_id = under_way(suite, long_wav)
    killed = redis_process(up)
    assert killed is not None, "no redis-server under vtx up"
    os.kill(killed.pid, signal.SIGKILL)
    wait_gone([killed.pid])

    deadline = time.monotonic() + 60
    while (back := redis_process(up)) is None or back.pid == killed.pid:
        assert time.monotonic() < deadline, "redis-server was not started again"
        time.sleep(0.1)
    assert finished(suite, job_id) == "completed"
    assert transcript(suite, job_id) == reference
    log = suite.log.read_text(errors="replace")
    assert "the redis exited with code -9; restarting" in log
    assert "the redis is back (restart 1)" in log
    suite.assert_healthy()


def test_ctrl_c_stops_everything_in_order_with_exit_code_0(supervised: Supervised) -> None:
    suite, up = supervised
    family = [p.pid for p in psutil.Process(up.pid).children(recursive=True)]
    assert len(family) >= 5  # Redis, four services, the transcriber's workers
    start = suite.log.stat().st_size
    os.killpg(up.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    assert up.wait(180) == 0, suite.log.read_text(errors="replace")[-4000:]
    wait_gone(family)
    with suite.log.open("rb") as handle:
        handle.seek(start)
        lines = handle.read().decode(errors="replace").splitlines()
    order = {
        name: line_of(lines, f"stopped {name}")
        for name in ("the gateway", "the splitter", "the transcriber", "the health", "the redis")
    }
    assert order["the gateway"] < order["the splitter"] < order["the health"]
    assert order["the gateway"] < order["the transcriber"] < order["the health"]
    assert max(order.values()) == order["the redis"]
    for url in suite.urls.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health/live", timeout=1)
