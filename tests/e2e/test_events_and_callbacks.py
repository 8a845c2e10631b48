"""Following a job: Server-Sent Events as it runs, and a signed callback when it ends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from shared.webhooks import SIGNATURE_HEADER, verify_signature
from tests.conftest import make_silent_video
from tests.e2e.conftest import WEBHOOK_SECRET, Suite
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
    assert headers["X-Vtx-Delivery"] == f"{job_id}:1"
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
