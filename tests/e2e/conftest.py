"""The whole suite started as a user starts it (`vtx up`), driven over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.cli.readiness import NotReady, wait_ready
from tests.conftest import free_port
from tests.databases import PostgresServer
from tests.e2e.harness import Cluster, running_cluster

SERVICES = ("gateway", "splitter", "transcriber", "health")
WEBHOOK_SECRET = "e2e-webhook-secret"


@dataclass
class Suite:
    urls: dict[str, str]
    data_dir: Path
    log: Path
    env: dict[str, str]

    @property
    def gateway(self) -> str:
        return self.urls["gateway"]

    def assert_healthy(self) -> None:
        for name, url in self.urls.items():
            response = httpx.get(f"{url}/health/ready", timeout=5)
            assert response.status_code == 200, f"{name}: {response.text}"

    def vtx(self, *args: str) -> str:
        """Run a `vtx` command against this suite's settings (its database, its data)."""
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def wait_for(
        self, job_id: str, timeout: float = 120, headers: dict[str, str] | None = None
    ) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, object] = httpx.get(
                f"{self.gateway}/v1/jobs/{job_id}", headers=headers
            ).json()
            if job["status"] in ("completed", "failed"):
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def suite_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTX_")}
    if database_url:
        env["VTX_DATABASE_URL"] = database_url
    env.update(
        VTX_DATA_DIR=str(data_dir),
        VTX_EMBEDDED_REDIS_PORT=str(free_port()),
        VTX_MAX_UPLOAD_MB="1",
        VTX_CHUNK_SECONDS="10",
        VTX_LOG_FORMAT="json",
        VTX_DETECT_BLOCKING="1",  # the services fail any blocking call on their loops
        # Callbacks go to receivers the tests start on loopback (a test-only exemption),
        # signed with a known secret, retried quickly.
        VTX_WEBHOOK_SECRET=WEBHOOK_SECRET,
        VTX_URL_ALLOW_NETWORKS="127.0.0.1/32",
        VTX_CALLBACK_BACKOFF_S="0.3",
        VTX_URL_TIMEOUT_S="5",  # the fuzzer sends made-up URLs: give up on them quickly
        # The speakers service starts too where its extra is installed: on a port of its own.
        **{f"VTX_{name.upper()}_PORT": str(free_port()) for name in (*SERVICES, "speakers")},
    )
    return env


@pytest.fixture(scope="session")
def suite(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Suite]:
    """The suite as `vtx up` starts it, open (no API keys), shared by the session."""
    with running_suite(tmp_path_factory.mktemp("suite"), postgres) as suite:
        yield suite


@contextmanager
def launched_suite(
    root: Path, postgres: PostgresServer | None, stop_timeout_s: float = 60, **extra_env: str
) -> Iterator[tuple[Suite, subprocess.Popen[bytes]]]:
    """`vtx up` in its own data folder (and database) and process group, as in a terminal,
    ready; on exit stopped with SIGTERM unless it has stopped already."""
    database_url = postgres.create_database() if postgres is not None else None
    env = suite_env(root / "data", database_url)
    env.update(extra_env)
    log = root / "vtx-up.log"
    urls = {n: f"http://127.0.0.1:{env[f'VTX_{n.upper()}_PORT']}" for n in SERVICES}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    suite = Suite(urls, root / "data", log, env)
    try:
        _wait_ready(process, suite)
        yield suite, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(stop_timeout_s)


@contextmanager
def running_suite(root: Path, postgres: PostgresServer | None, **extra_env: str) -> Iterator[Suite]:
    """`vtx up` in its own data folder (and database), stopped and checked on exit."""
    with launched_suite(root, postgres, **extra_env) as (suite, process):
        yield suite
    assert process.returncode == 0, suite.log.read_text()[-4000:]
    for url in suite.urls.values():  # every service stopped with the suite
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health/live", timeout=1)


def _wait_ready(process: subprocess.Popen[bytes], suite: Suite) -> None:
    try:
        wait_ready(suite.urls.values(), 120, lambda: process.poll() is not None)
    except NotReady as exc:
        raise RuntimeError(f"vtx up {exc}:\n{suite.log.read_text()[-4000:]}") from exc


@contextmanager
def gateway_without_speakers(root: Path, postgres: PostgresServer | None) -> Iterator[Cluster]:
    """The gateway as deployed without the speakers service: its own Redis and database,
    no worker of any kind."""
    with running_cluster(root, postgres, ("gateway",)) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def gateway_alone(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Cluster]:
    """A gateway with no speakers service (nor any worker) beside it."""
    with gateway_without_speakers(tmp_path_factory.mktemp("alone"), postgres) as cluster:
        yield cluster
