"""Receivers that never finish answering: each attempt fails on its one deadline, the
callback gives up after its retry window, and transcription never waits for them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from shared import db
from shared.config import Settings
from shared.models import CallbackStatus, Job, utcnow
from tests.conftest import make_silent_video
from tests.databases import PostgresServer
from tests.e2e.conftest import Suite, running_suite
from tests.e2e.test_jobs import upload

TIMEOUT_S = 2.0
RETRY_FOR = timedelta(seconds=5)


class Stalling:
    """Takes every request on loopback and never finishes its answer: with `interim` it
    sends `HTTP/1.1 102 Processing` every second (each one resets a per-read timeout),
    without it says nothing at all. Counts the connections it has seen."""

    def __init__(self, interim: bool) -> None:
        self.interim = interim
        self.connections = 0
        self.stopped = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.5)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._stall, args=(conn,), daemon=True).start()

    def _stall(self, conn: socket.socket) -> None:
        """Until the caller hangs up: a 102 (if interim), then a second of listening."""
        conn.settimeout(1.0)
        with conn:
            while not self.stopped.is_set():
                try:
                    if self.interim:
                        conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")
                    if conn.recv(65536) == b"":
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

    def close(self) -> None:
        self.stopped.set()
        self.server.close()


@pytest.fixture(scope="module")
def hasty(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Suite]:
    """Callbacks with a short deadline and a short retry window."""
    with running_suite(
        tmp_path_factory.mktemp("hasty"),
        postgres,
        VTX_CALLBACK_TIMEOUT_S=str(TIMEOUT_S),
        VTX_CALLBACK_RETRY_FOR=f"PT{RETRY_FOR.total_seconds():g}S",
        VTX_RECONCILE_INTERVAL_S="1",
    ) as suite:
        yield suite


def callback_when_ended(suite: Suite, job_id: str, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        callback: dict[str, object] = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}").json()[
            "callback"
        ]
        if callback["status"] in ("delivered", "failed"):
            return callback
        time.sleep(0.3)
    raise AssertionError(f"the callback of {job_id} did not end in {timeout} s: {callback}")


def test_hanging_receivers_fail_on_their_deadline_and_hold_up_nothing(
    hasty: Suite, speech_mp4: Path, tmp_path: Path
) -> None:
    trickling, silent = Stalling(interim=True), Stalling(interim=False)
    try:
        media = make_silent_video(tmp_path / "silent.mp4")  # fails at once: a callback too
        hung = [upload(hasty, media, callback_url=trickling.url).json()["id"] for _ in range(5)]
        hung += [upload(hasty, media, callback_url=silent.url).json()["id"] for _ in range(2)]
        deadline = time.monotonic() + 60
        while trickling.connections < 4:  # deliveries under way
            assert time.monotonic() < deadline, trickling.connections
            time.sleep(0.1)

        job = hasty.wait_for(upload(hasty, speech_mp4).json()["id"], timeout=90)
        assert job["status"] == "completed", job

        for job_id in hung:
            callback = callback_when_ended(hasty, job_id, timeout=90)
            assert callback["status"] == "failed", callback
            deliveries: list[dict[str, object]] = callback["deliveries"]  # type: ignore[assignment]
            assert deliveries and len(deliveries) == callback["attempts"], callback
            for delivery in deliveries:
                assert delivery["status_code"] is None, delivery
                assert f"within {TIMEOUT_S:g} s" in str(delivery["error"]), delivery
                took = int(delivery["duration_ms"])  # type: ignore[call-overload]
                assert TIMEOUT_S * 900 <= took <= TIMEOUT_S * 1000 + 15_000, delivery
    finally:
        trickling.close()
        silent.close()
    hasty.assert_healthy()


def revive(suite: Suite, job_id: str) -> None:
    """Make an ended callback due again, as if its last attempt's worker had died
    before recording it: the reconciler puts it back on the queue."""
    settings = Settings(data_dir=suite.data_dir, database_url=suite.env.get("VTX_DATABASE_URL"))

    async def due() -> None:
        engine = db.create_engine(settings)
        try:
            async with db.session_factory(engine)() as session:
                await session.exec(
                    update(Job)
                    .where(col(Job.id) == job_id)
                    .values(
                        callback_status=CallbackStatus.pending.value,
                        callback_next_at=utcnow() - timedelta(seconds=1),
                    )
                )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(due())


def outlive_the_window(suite: Suite, job_id: str) -> None:
    """Wait until the job ended more than VTX_CALLBACK_RETRY_FOR ago: a callback fails
    as soon as its next retry would come due after the window, which can be before
    the window itself has passed."""
    job = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}").json()
    ended = datetime.fromisoformat(job["finished_at"])
    left = (ended + RETRY_FOR + timedelta(seconds=0.5) - datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, left))


def test_a_retry_due_after_the_window_is_not_made(hasty: Suite, tmp_path: Path) -> None:
    silent = Stalling(interim=False)
    try:
        media = make_silent_video(tmp_path / "silent.mp4")
        job_id = upload(hasty, media, callback_url=silent.url).json()["id"]
        made = callback_when_ended(hasty, job_id, timeout=90)
        assert made["status"] == "failed", made
        seen = silent.connections
        outlive_the_window(hasty, job_id)
        revive(hasty, job_id)
        deadline = time.monotonic() + 60
        while True:
            callback = httpx.get(f"{hasty.gateway}/v1/jobs/{job_id}").json()["callback"]
            if callback["status"] != "pending":
                break
            assert time.monotonic() < deadline, callback
            time.sleep(0.3)
        assert callback["status"] == "failed", callback
        assert callback["deliveries"] == made["deliveries"]  # no attempt, no record
        assert silent.connections == seen
    finally:
        silent.close()
