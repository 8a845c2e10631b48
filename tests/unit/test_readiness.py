"""services/cli/readiness.py against a real local HTTP server that is not ready, then is."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.cli.readiness import NotReady, is_ready, wait_ready
from tests.conftest import free_port


class _Probe(BaseHTTPRequestHandler):
    answers: list[int] = []

    def do_GET(self) -> None:
        code = self.answers.pop(0) if self.answers else 200
        self.send_response(code if self.path == "/health/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_waits_through_503s_until_ready(service: str) -> None:
    _Probe.answers = [503, 503]
    assert not is_ready(service)
    wait_ready([service], timeout_s=10, poll_s=0.01)
    assert _Probe.answers == []


def test_a_refused_connection_is_not_ready_and_times_out() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    assert not is_ready(nobody)
    with pytest.raises(NotReady, match="not ready after"):
        wait_ready([nobody], timeout_s=0.2, poll_s=0.05)


def test_an_exited_process_stops_the_wait_at_once() -> None:
    with pytest.raises(NotReady, match="exited"):
        wait_ready(["http://127.0.0.1:9"], timeout_s=60, exited=lambda: True)
