"""The whole suite started as a user starts it (`vtx up`), driven over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.databases import PostgresServer

SERVICES = ("gateway", "splitter", "transcriber", "health")


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

    def wait_for(self, job_id: str, timeout: float = 120) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, object] = httpx.get(f"{self.gateway}/v1/jobs/{job_id}").json()
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
        **{f"VTX_{name.upper()}_PORT": str(free_port()) for name in SERVICES},
    )
    return env


@pytest.fixture(scope="session")
def suite(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Suite]:
    root = tmp_path_factory.mktemp("suite")
    database_url = postgres.create_database() if postgres is not None else None
    env = suite_env(root / "data", database_url)
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
            yield suite
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(60)
    assert code == 0, log.read_text()[-4000:]
    for url in urls.values():  # every service stopped with the suite
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health/live", timeout=1)


def _wait_ready(process: subprocess.Popen[bytes], suite: Suite) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vtx up exited:\n{suite.log.read_text()[-4000:]}")
        try:
            suite.assert_healthy()
            return
        except (httpx.HTTPError, AssertionError):
            time.sleep(0.3)
    raise RuntimeError(f"vtx up not ready:\n{suite.log.read_text()[-4000:]}")
