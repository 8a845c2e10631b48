"""Upload forms are bounded while they stream: field count, field bytes, field names.

The attacks go over a raw socket to the running suite, so the test controls the body
byte by byte (chunked or with Content-Length) and stops sending the moment the
gateway answers: a refusal that comes early is one that held nothing. Form limits are
422 (the form is wrong); 413 stays the file's own size limit.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from tests.e2e.conftest import Suite

pytestmark = pytest.mark.one_database

BOUNDARY = "vtx-e2e-form"
ENDPOINTS = ("/v1/jobs", "/v1/audio/transcriptions")
MB = 1024 * 1024


@dataclass
class Answer:
    status: int
    body: bytes
    sent: int  # bytes of the request body written before the answer came

    def json(self) -> dict[str, object]:
        value: dict[str, object] = json.loads(self.body)
        return value

    def message(self) -> str:
        """The refusal's message, in the house shape or in OpenAI's."""
        body = self.json()
        error = body.get("error")
        return str(error["message"] if isinstance(error, dict) else body["detail"])


def part(name: str, value: bytes) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
    return head.encode() + value + b"\r\n"


def post(suite: Suite, path: str, parts: Iterator[bytes], length: int | None = None) -> Answer:
    """POST these parts as one form, chunked unless `length` is given; stop at the answer."""
    address = urlsplit(suite.gateway)
    assert address.hostname is not None and address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
        framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{framing}\r\n\r\n".encode()
        )
        sent = 0
        for piece in parts:
            if select.select([sock], [], [], 0)[0]:
                break  # the gateway has answered: stop sending
            data = piece if length is not None else b"%x\r\n%s\r\n" % (len(piece), piece)
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(data)
        else:
            if length is None:
                sock.sendall(b"0\r\n\r\n")
        return _read_answer(sock, sent)


def _read_answer(sock: socket.socket, sent: int) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(lines[0].split()[1]), body[:length], sent)


def gateway_process(suite: Suite) -> psutil.Process:
    """The process that listens on the gateway's port."""
    port = urlsplit(suite.gateway).port
    for connection in psutil.net_connections(kind="tcp"):
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
            and connection.pid
        ):
            return psutil.Process(connection.pid)
    raise AssertionError(f"nothing listens on port {port}")


def big_fields(count: int, size: int) -> Iterator[bytes]:
    return (part("prompt", b"p" * size) for _ in range(count))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_twenty_thousand_fields_are_refused_early_and_the_gateway_holds_nothing(
    suite: Suite, path: str
) -> None:
    count, size = 20_000, 8000  # 160 MB of fields, chunked: no Content-Length to judge by
    total = count * (len(part("prompt", b"p" * size)) + 10)
    gateway = gateway_process(suite)
    post(suite, path, big_fields(count, size))  # warm up the code paths before measuring
    before = gateway.memory_info().rss

    answer = post(suite, path, big_fields(count, size))

    grown = gateway.memory_info().rss - before
    assert answer.status == 422, answer.body
    assert "VTX_MAX_FORM_BYTES" in answer.message()
    assert answer.sent < total / 10, f"sent {answer.sent / MB:.1f} MB before the answer"
    assert grown < 8 * MB, f"the gateway grew by {grown / MB:.1f} MB"
    suite.assert_healthy()


@pytest.mark.parametrize("path", ENDPOINTS)
def test_too_many_small_fields_with_a_content_length_are_422(suite: Suite, path: str) -> None:
    fields = [part("language", b"en") for _ in range(2000)]
    body = b"".join(fields) + f"--{BOUNDARY}--\r\n".encode()
    answer = post(suite, path, iter([*fields, f"--{BOUNDARY}--\r\n".encode()]), len(body))
    assert answer.status == 422, answer.body
    assert "more than 32 fields besides the file (VTX_MAX_FORM_FIELDS)" in answer.message()


def test_an_unknown_field_on_jobs_is_422_naming_it_and_the_accepted_ones(suite: Suite) -> None:
    media = (b"\0" * 65536 for _ in range(1000))  # 64 MB the gateway never reads
    parts = iter(
        [
            part("colour", b"blue"),
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="a.wav"\r\n\r\n'.encode(),
            *media,
        ]
    )
    answer = post(suite, "/v1/jobs", parts)
    assert answer.status == 422
    message = answer.message()
    assert "'colour'" in message
    assert "file, url, language, chunk_seconds, model, task, prompt" in message
    assert answer.sent < 16 * MB


def test_an_unknown_field_on_audio_is_422_in_openai_shape(suite: Suite) -> None:
    for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        answer = post(suite, path, iter([part("chunk_seconds", b"30")]))
        assert answer.status == 422, answer.body
        error = answer.json()["error"]
        assert isinstance(error, dict)
        assert error["type"] == "invalid_request_error"
        assert "'chunk_seconds' is not one this endpoint takes" in error["message"]
        assert "response_format" in error["message"]
    # translations take none of the transcription-only fields
    answer = post(suite, "/v1/audio/translations", iter([part("language", b"en")]))
    assert answer.status == 422 and "'language'" in answer.message()


def test_a_refused_form_leaves_no_spool_file(suite: Suite) -> None:
    uploads = suite.data_dir / "uploads"
    post(suite, "/v1/jobs", big_fields(100, 8000))
    deadline = time.monotonic() + 10
    while any(uploads.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(uploads.iterdir()) == []
    assert httpx.get(f"{suite.gateway}/health/ready").status_code == 200
