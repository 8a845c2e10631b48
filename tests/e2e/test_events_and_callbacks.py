"""Following a job: Server-Sent Events as it runs, and a signed callback when it ends."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from shared import db
from shared.config import Settings
from shared.models import ApiKey
from shared.pipeline.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature
from tests.conftest import make_silent_video
from tests.databases import PostgresServer
from tests.e2e.conftest import WEBHOOK_SECRET, Suite, running_suite
from tests.e2e.test_jobs import upload


def read_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, object]]]:
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []


def test_events_stream_rising_progress_then_the_end(suite: Suite, speech_mp4: Path) -> None:
    job_id = upload(suite, speech_mp4).json()["id"]
    seen: list[tuple[str, dict[str, object]]] = []
    with httpx.stream("GET", f"{suite.gateway}/v1/jobs/{job_id}/events", timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        seen = list(read_events(response))  # the server closes the stream at the end
    names = [name for name, _ in seen]
    assert names[-1] == "completed", names
    assert all(job["id"] == job_id for _, job in seen)
    percents = [job["progress"]["percent"] for _, job in seen]  # type: ignore[index]
    assert percents == sorted(percents) and percents[-1] == 100
    chunks = [job["progress"]["chunks_done"] for _, job in seen]  # type: ignore[index]
    assert len(set(chunks)) >= 2, seen  # progress arrived as it happened, not all at the end


def test_events_of_an_unknown_job_are_404(suite: Suite) -> None:
    assert httpx.get(f"{suite.gateway}/v1/jobs/{'0' * 32}/events").status_code == 404


class Receiver:
    """An HTTP server on loopback that records callbacks, failing the first `fail` of them."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes, float]] = []
        self.fail = fail
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.calls.append((dict(self.headers), body, time.monotonic()))
                self.send_response(500 if len(owner.calls) <= owner.fail else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.calls) >= count, self.calls

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_a_completed_job_calls_back_signed(
    suite: Suite, speech_mp4: Path, receiver: Receiver
) -> None:
    job_id = upload(suite, speech_mp4, callback_url=receiver.url).json()["id"]
    receiver.wait(1)
    headers, body, _ = receiver.calls[0]
    assert verify_signature(WEBHOOK_SECRET, body, headers[SIGNATURE_HEADER])
    assert not verify_signature(WEBHOOK_SECRET, body.replace(b"completed", b"failed"),
                                headers[SIGNATURE_HEADER])  # fmt: skip
    assert not verify_signature("another-secret", body, headers[SIGNATURE_HEADER])
    sent = json.loads(body)
    assert sent["event"] == "job.completed" and sent["job"]["id"] == job_id
    assert sent["delivery"] == headers[DELIVERY_HEADER] == f"{job_id}:1"  # signed, with the body
    stamp = headers[SIGNATURE_HEADER].split(",")[0].removeprefix("t=")
    arabic = stamp.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for forged in (arabic, "9" * 5000):  # same value in other digits; a huge number
        header = headers[SIGNATURE_HEADER].replace(f"t={stamp}", f"t={forged}")
        assert not verify_signature(WEBHOOK_SECRET, body, header)
    job = suite.wait_for(job_id)
    callback = job["callback"]
    deadline = time.monotonic() + 10
    while callback["status"] != "delivered" and time.monotonic() < deadline:  # type: ignore[index]
        time.sleep(0.1)
        callback = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}").json()["callback"]
    assert callback["status"] == "delivered"  # type: ignore[index]
    assert [d["status_code"] for d in callback["deliveries"]] == [204]  # type: ignore[index]


def test_a_failing_receiver_gets_the_third_try(suite: Suite, tmp_path: Path) -> None:
    failing = Receiver(fail=2)
    try:
        silent = make_silent_video(tmp_path / "silent.mp4")  # ends failed: a callback too
        job_id = upload(suite, silent, callback_url=failing.url).json()["id"]
        failing.wait(3)
        times = [at for _, _, at in failing.calls]
        assert times[2] - times[1] >= times[1] - times[0] > 0.2  # backoff doubles
        assert json.loads(failing.calls[2][1])["event"] == "job.failed"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            callback = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}").json()["callback"]
            if callback["status"] == "delivered":
                break
            time.sleep(0.1)
        assert [d["status_code"] for d in callback["deliveries"]] == [500, 500, 204]
        assert callback["attempts"] == 3
    finally:
        failing.close()


@pytest.fixture(scope="module")
def tenants(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Suite]:
    """A suite of its own: keys change the whole suite's mode (VTX_AUTH=auto)."""
    with running_suite(tmp_path_factory.mktemp("tenants"), postgres) as suite:
        yield suite


def new_key(suite: Suite, name: str) -> dict[str, str]:
    made: dict[str, str] = json.loads(suite.vtx("keys", "create", name, "--json"))
    return made


def forget_webhook_secret(suite: Suite, key_id: str) -> None:
    """What a key made before keys had webhook secrets looks like."""
    settings = Settings(data_dir=suite.data_dir, database_url=suite.env.get("VTX_DATABASE_URL"))

    async def clear() -> None:
        engine = db.create_engine(settings)
        try:
            async with db.session_factory(engine)() as session:
                await session.exec(
                    update(ApiKey).where(col(ApiKey.id) == key_id).values(webhook_secret=None)
                )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(clear())


def submit_as(suite: Suite, key: dict[str, str], path: Path, callback_url: str) -> str:
    with path.open("rb") as handle:
        response = httpx.post(
            f"{suite.gateway}/v1/jobs",
            files={"file": handle},
            data={"callback_url": callback_url},
            headers={"Authorization": f"Bearer {key['key']}"},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_each_key_signs_its_own_callbacks(
    tenants: Suite, receiver: Receiver, tmp_path: Path
) -> None:
    alice, bob, legacy = (new_key(tenants, name) for name in ("alice", "bob", "legacy"))
    assert alice["webhook_secret"] != bob["webhook_secret"]
    forget_webhook_secret(tenants, legacy["id"])
    silent = make_silent_video(tmp_path / "silent.mp4")  # ends failed: a callback too
    owners = {submit_as(tenants, key, silent, receiver.url): key for key in (alice, bob, legacy)}
    receiver.wait(3)
    for headers, body, _ in receiver.calls:
        sent = json.loads(body)
        owner, delivery = owners[sent["job"]["id"]], f"{sent['job']['id']}:1"
        assert sent["delivery"] == headers[DELIVERY_HEADER] == delivery
        signature = headers[SIGNATURE_HEADER]
        # A key without a secret of its own (made before keys had one) signs with the
        # server's, as before; every other key with its own, which nobody else verifies.
        expected = WEBHOOK_SECRET if owner is legacy else owner["webhook_secret"]
        assert verify_signature(expected, body, signature)
        candidates = [WEBHOOK_SECRET, *(key["webhook_secret"] for key in owners.values())]
        assert not any(verify_signature(c, body, signature) for c in candidates if c != expected)
        swapped = body.replace(f'"delivery":"{delivery}"'.encode(), b'"delivery":"x:2"')
        assert swapped != body and not verify_signature(expected, swapped, signature)
