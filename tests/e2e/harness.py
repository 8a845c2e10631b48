"""The suite as separate service processes (as Kubernetes runs it), for fault injection.

Unlike `vtx up`, each service can be killed, stopped and started again on its own,
and Redis can be flushed or restarted under it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select

from services.cli.readiness import NotReady, wait_ready
from shared import db, migrate
from shared.config import Settings
from shared.models import Chunk, Job
from tests.conftest import RedisServer, free_port
from tests.databases import PostgresServer

SERVICES = ("gateway", "splitter", "transcriber", "health")


class Cluster:
    def __init__(
        self, root: Path, redis: RedisServer, database_url: str | None, **env: str
    ) -> None:
        self.root = root
        self.redis = redis
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VTX_")}
        self.env.update(
            VTX_DATA_DIR=str(root / "data"),
            VTX_REDIS_URL=redis.url,
            VTX_LOG_FORMAT="json",
            **{f"VTX_{name.upper()}_PORT": str(free_port()) for name in (*SERVICES, "speakers")},
            **env,
        )
        if database_url:
            self.env["VTX_DATABASE_URL"] = database_url
        self.settings = Settings(
            data_dir=root / "data", redis_url=redis.url, database_url=database_url
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.env[f'VTX_{name.upper()}_PORT']}"

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    def migrate(self) -> None:
        asyncio.run(migrate.upgrade_database(self.settings))

    def start(self, name: str) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", name], env=self.env, stdout=log, stderr=log
        )
        self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        process = self.processes[name]
        try:
            wait_ready([self.url(name)], timeout, lambda: process.poll() is not None, 0.1)
        except NotReady as exc:
            raise RuntimeError(f"{name} {exc}: {self.log_tail(name)}") from exc

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.processes[name].send_signal(sig)

    def kill(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)
        self.processes[name].wait(10)

    def terminate(self, name: str, timeout: float = 60) -> int:
        self.signal(name, signal.SIGTERM)
        return self.processes[name].wait(timeout)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    def log_tail(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def submit(self, path: Path) -> str:
        with path.open("rb") as handle:
            response = httpx.post(f"{self.gateway}/v1/jobs", files={"file": handle}, timeout=60)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def wait_for(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, Any] = httpx.get(f"{self.gateway}/v1/jobs/{job_id}", timeout=10).json()
            if job["status"] in ("completed", "failed"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} unfinished after {timeout} s")

    def transcript(self, job_id: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.gateway}/v1/jobs/{job_id}/transcript", timeout=10)
        assert response.status_code == 200, response.text
        segments: list[dict[str, Any]] = response.json()["segments"]
        return segments

    def rows(self, job_id: str) -> tuple[Job | None, list[Chunk]]:
        """Read the job's rows straight from the database, as an operator would."""
        return asyncio.run(self._rows(job_id))

    async def _rows(self, job_id: str) -> tuple[Job | None, list[Chunk]]:
        engine = db.create_engine(self.settings)
        try:
            async with db.session_factory(engine)() as session:
                job = await session.get(Job, job_id)
                chunks = list(await session.exec(select(Chunk).where(Chunk.job_id == job_id)))
                return job, chunks
        finally:
            await engine.dispose()

    def wait_until(self, job_id: str, what: str, check: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job, chunks = self.rows(job_id)
            if check(job, chunks):
                return
            time.sleep(0.01)
        raise AssertionError(f"job {job_id}: {what} did not happen in {timeout} s")


@contextmanager
def running_cluster(
    root: Path, postgres: PostgresServer | None, services: tuple[str, ...], **env: str
) -> Iterator[Cluster]:
    """Its own Redis and database, migrated, with `services` started and ready."""
    redis = RedisServer(root)
    redis.start()
    database_url = postgres.create_database() if postgres is not None else None
    cluster = Cluster(root, redis, database_url, **env)
    if "VTX_HEALTH_SERVICES" not in env:  # the aggregator judges what this cluster runs
        watched = {n: cluster.url(n) for n in services if n != "health"}
        cluster.env["VTX_HEALTH_SERVICES"] = json.dumps(watched)
    cluster.migrate()
    try:
        for name in services:
            cluster.start(name)
        yield cluster
    finally:
        cluster.stop_all()
        redis.stop()
