"""Slow clients cannot hold a server: stalled headers and bodies are cut off, and
connections past the limit are refused instead of piling up."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import PostgresServer
from tests.e2e.harness import Cluster, running_cluster

pytestmark = pytest.mark.one_database

LIMITS = {
    "VTX_HEADER_TIMEOUT_S": "2",
    "VTX_BODY_IDLE_TIMEOUT_S": "2",
    "VTX_MAX_CONNECTIONS": "80",
}
HALF_A_HEADER = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
CUT_OFF_WITHIN_S = 30.0  # generous: the servers cut them after ~2 s


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("slow-clients")
    with running_cluster(root, postgres, ("gateway",), **LIMITS) as cluster:
        yield cluster


def port_of(cluster: Cluster) -> int:
    return int(cluster.env["VTX_GATEWAY_PORT"])


def stalled(port: int, sent: bytes) -> socket.socket:
    """A connection that sends `sent` and then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(sent)
    return sock


def until_closed(sock: socket.socket, timeout: float = CUT_OFF_WITHIN_S) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError as exc:
        raise AssertionError(f"still open after {timeout} s; got {received[:200]!r}") from exc
    finally:
        sock.close()
    return received


def test_slowloris_does_not_stop_others_and_is_cut_off(gateway: Cluster) -> None:
    slow = [stalled(port_of(gateway), HALF_A_HEADER) for _ in range(50)]
    response = httpx.get(f"{gateway.gateway}/health/live", timeout=10)
    assert response.status_code == 200
    answers = [until_closed(sock) for sock in slow]
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[0]
    assert b"headers took over 2 s" in answers[0]


def test_connections_past_the_limit_get_503_until_the_stalled_are_cut(
    gateway: Cluster,
) -> None:
    slow = [stalled(port_of(gateway), HALF_A_HEADER) for _ in range(80)]
    refused = httpx.get(f"{gateway.gateway}/health/live", timeout=10)
    assert refused.status_code == 503
    for sock in slow:
        until_closed(sock)
    assert httpx.get(f"{gateway.gateway}/health/live", timeout=10).status_code == 200


def spool_files(cluster: Cluster) -> list[Path]:
    return list((cluster.root / "data" / "uploads").glob("upload-*"))


def test_a_stalled_upload_ends_with_408_and_leaves_no_spool_file(
    gateway: Cluster, speech_mp4: Path
) -> None:
    port = port_of(gateway)
    media = speech_mp4.read_bytes()
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="talk.mp4"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + media + b"\r\n--B--\r\n"
    )
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = stalled(port, head + body[: len(body) // 2])
    deadline = time.monotonic() + 10
    while not spool_files(gateway):  # the upload is being spooled: a file exists
        assert time.monotonic() < deadline, "no spool file appeared"
        time.sleep(0.05)
    answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert b"body paused for over 2 s" in answer
    deadline = time.monotonic() + 10
    while spool_files(gateway):
        assert time.monotonic() < deadline, f"spool left behind: {spool_files(gateway)}"
        time.sleep(0.05)
    gateway.wait_ready("gateway")
