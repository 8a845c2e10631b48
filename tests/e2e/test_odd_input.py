"""Odd input is a 4xx, never a 5xx: a sweep over every value the gateway parses.

A table of odd values (numbers in other scripts, with underscores, 'nan' and 'inf',
thousands of digits; NUL and control characters; very long text) goes to every
endpoint, field, query parameter and header that reads one, on the running suite,
open and with API keys (media tokens are only read then). Every answer must be below
500, and the suite healthy after. Run it on PostgreSQL too, which refuses NUL in text.
"""

from __future__ import annotations

import http.server
import json
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.databases import PostgresServer
from tests.e2e.conftest import Suite, running_suite

HUGE = "9" * 5000
NUMBERS = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e999",
    "-1",
    "1_0",
    "\u0661\u0662",  # Arabic-Indic 12
    "\uff11\uff12",  # fullwidth 12
    "\u00b2",  # superscript 2
    HUGE,
    "",
    " 5",
    "0x10",
    "+1",
    "\x00",
    "5\x00",
]
SUBTITLE_RULES = ("max_line_width", "max_line_count", "max_cue_seconds")
TEXTS = ["\x00", "a\x00b", "\x1b[31m", "\u202e", "\ud800", "a" * 10_000]
JOB_IDS = [
    "nope",
    "\x00",
    "%00",
    "a" * 10_000,
    "0" * 32,
    "F" * 32,
    "\u0661" * 32,
    "../../etc/passwd",
    "\u202e" + "0" * 31,
    " ",
    "\ud800",
]
FORMATS = ["docx", "", "\x00", "JSON", "json\x00", "a" * 10_000, "\u0661"]
RANGES = [
    b"bytes=" + HUGE.encode() + b"-",
    b"bytes=0-" + HUGE.encode(),
    b"bytes=-" + HUGE.encode(),
    b"bytes=" + "\u0661\u0662".encode() + b"-",
    b"bytes=\xb2-\xb3",
    b"bytes=-5-",
    b"bytes=1_0-20",
    b"bytes=-0",
    b"bytes=" + b"0-1," * 1000,
    b"bytes=",
    b"=",
    b"\xff\xfe",
]
TOKENS = [
    "\u00b2.abc",
    "\u0661\u0662.abc",
    HUGE + "." + "A" * 32,
    "9" * 13 + "." + "A" * 32,
    "1." + "A" * 32,
    "-1." + "A" * 32,
    "1_0." + "A" * 32,
    "\x00",
    ".",
    "a" * 10_000,
]


@dataclass
class Probe:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    content: bytes | None = None

    def send(self, suite: Suite, auth: dict[str, str]) -> httpx.Response:
        return httpx.request(
            self.method,
            f"{suite.gateway}{self.path}",
            params=self.params,
            headers={**auth, **self.headers},
            data=self.data,
            files=self.files,
            content=self.content,
            timeout=60,
        )


BOUNDARY = "vtx-odd"
FORM = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def raw_form(*parts: tuple[bytes, bytes | None, bytes]) -> bytes:
    """A multipart body byte for byte: (name, filename, value) parts, nothing escaped
    (httpx percent-encodes control characters in names, as browsers do; attackers do not)."""
    body = b""
    for name, filename, value in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        body += b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: " + disposition
        body += b"\r\n\r\n" + value + b"\r\n"
    return body + b"--" + BOUNDARY.encode() + b"--\r\n"


def text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def job_path(job_id: str, tail: str = "") -> str:
    return f"/v1/jobs/{quote(job_id, safe='', errors='surrogatepass')}{tail}"


def reads(job_id: str) -> Iterator[Probe]:
    """Everything that reads a job id, a format, a Range, a token or a query number."""
    for number in NUMBERS:
        yield Probe("GET", "/v1/jobs", params={"limit": number})
        yield Probe("GET", "/v1/jobs", params={"offset": number})
    for odd in JOB_IDS:
        for tail in ("", "/transcript", "/media", "/events"):
            yield Probe("GET", job_path(odd, tail))
        yield Probe("DELETE", job_path(odd))
    for fmt in FORMATS:
        yield Probe("GET", job_path(job_id, "/transcript"), params={"format": fmt})
    for number in NUMBERS:
        for rule in SUBTITLE_RULES:
            params = {"format": "srt", rule: number}
            yield Probe("GET", job_path(job_id, "/transcript"), params=params)
    for value in RANGES:
        for method in ("GET", "HEAD"):
            yield Probe(method, job_path(job_id, "/media"), headers={"Range": value})
        tag = b'"' + job_id.encode() + b'-0"'
        yield Probe("GET", job_path(job_id, "/media"), headers={"Range": value, "If-Range": tag})
    for value in (b"\xff", b"W/" + HUGE.encode(), b'"' * 1000):
        yield Probe("GET", job_path(job_id, "/media"), headers={"If-None-Match": value})
    for token in TOKENS:
        yield Probe("GET", job_path(job_id, "/media"), params={"token": token})
    for value in (HUGE, "\u0661", "-1", "\xff"):
        raw = value.encode("utf-8", "surrogatepass")
        yield Probe("GET", job_path(job_id, "/events"), headers={"Last-Event-ID": raw})


def forms(not_media: bytes) -> Iterator[Probe]:
    """Every form field that is parsed, with an odd value, beside a file that is not media:
    a form the gateway accepts ends at 415, one it refuses earlier at 422 or 413."""
    upload = (b"file", b"talk.wav", not_media)
    jobs, audio = "/v1/jobs", "/v1/audio/transcriptions"
    for number in NUMBERS:
        for name in (b"chunk_seconds", b"temperature"):
            yield Probe(
                "POST", jobs, headers=FORM, content=raw_form((name, None, text(number)), upload)
            )
        for name in (b"temperature", *(rule.encode() for rule in SUBTITLE_RULES)):
            yield Probe(
                "POST", audio, headers=FORM, content=raw_form((name, None, text(number)), upload)
            )
    for odd in TEXTS:
        value = text(odd)
        for name in (
            b"language",
            b"model",
            b"task",
            b"prompt",
            b"hotwords",
            b"callback_url",
            b"vad",
        ):
            yield Probe("POST", jobs, headers=FORM, content=raw_form((name, None, value), upload))
        yield Probe("POST", jobs, headers=FORM, content=raw_form((b"url", None, value)))
        for name in (
            b"language",
            b"model",
            b"prompt",
            b"hotwords",
            b"response_format",
            b"timestamp_granularities[]",
            b"vad",
        ):
            yield Probe("POST", audio, headers=FORM, content=raw_form((name, None, value), upload))
        for path in (jobs, audio):  # the odd text as a field's name
            yield Probe("POST", path, headers=FORM, content=raw_form((value, None, b"x"), upload))
    for url in ("http://\x00", "file:///etc/passwd", "http://[::1", "http://127.0.0.1:1/%00"):
        yield Probe("POST", jobs, headers=FORM, content=raw_form((b"url", None, text(url))))
    for boundary in (b"b" * 300, b"", b'"\xff"', b"\xd9\xa1"):
        headers = {"Content-Type": b"multipart/form-data; boundary=" + boundary}
        yield Probe("POST", jobs, headers=headers, content=raw_form(upload))


def odd_filenames(media: bytes) -> Iterator[Probe]:
    """Real media under names no file system would give: these become jobs."""
    names = [
        text("a\x00b\x01c\x7f\x9b\u202egnp\u2066.mp4"),
        b"n" * 6000 + b".mp4",
        text("\x00\u202e"),
        b"\xff\xfe.mp4",  # not UTF-8
    ]
    odd_id = {"X-Request-ID": b"\xff" * 100, **FORM}
    for name in names:
        yield Probe("POST", "/v1/jobs", headers=odd_id, content=raw_form((b"file", name, media)))
    # /v1/audio waits for the transcript: one odd name is enough there
    form = raw_form((b"model", None, b"whisper-1"), (b"file", names[0], media))
    yield Probe("POST", "/v1/audio/transcriptions", headers=FORM, content=form)


def sweep(suite: Suite, probes: Iterator[Probe], auth: dict[str, str]) -> list[httpx.Response]:
    answers = [probe.send(suite, auth) for probe in probes]
    errors = [
        f"{r.request.method} {str(r.request.url)[:160]} -> {r.status_code} {r.text[:200]}"
        for r in answers
        if r.status_code >= 500
    ]
    assert not errors, "\n".join(errors)
    return answers


def a_completed_job(suite: Suite, media: Path, auth: dict[str, str]) -> str:
    with media.open("rb") as handle:
        response = httpx.post(
            f"{suite.gateway}/v1/jobs", files={"file": handle}, headers=auth, timeout=60
        )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    assert suite.wait_for(job_id, headers=auth)["status"] == "completed"
    return job_id


def check_stored_names(suite: Suite, answers: list[httpx.Response], auth: dict[str, str]) -> None:
    """The jobs made under odd names keep them clean; then they go, with their work."""
    created = [r.json()["id"] for r in answers if r.status_code == 202]
    assert created, [r.text[:200] for r in answers]
    for job_id in created:
        job = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}", headers=auth).json()
        name = job["filename"] or ""
        assert len(name) <= 255
        assert not any(unicodedata.category(c) == "Cc" or c == "\u202e" for c in name), name
        assert httpx.delete(f"{suite.gateway}/v1/jobs/{job_id}", headers=auth).status_code == 204


def run_sweep(suite: Suite, speech_mp4: Path, auth: dict[str, str]) -> None:
    job_id = a_completed_job(suite, speech_mp4, auth)
    sweep(suite, reads(job_id), auth)
    sweep(suite, forms(b"not media\n" * 50), auth)
    answers = sweep(suite, odd_filenames(speech_mp4.read_bytes()), auth)
    check_stored_names(suite, [a for a in answers if a.request.url.path == "/v1/jobs"], auth)
    suite.assert_healthy()
    listed = httpx.get(f"{suite.gateway}/v1/jobs", headers=auth)
    assert listed.status_code == 200, listed.text


def test_odd_input_on_the_open_suite_is_never_a_5xx(suite: Suite, speech_mp4: Path) -> None:
    run_sweep(suite, speech_mp4, {})


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Suite]:
    with running_suite(
        tmp_path_factory.mktemp("odd-keyed"),
        postgres,
        VTX_AUTH="required",
        VTX_RATE_LIMIT_PER_MINUTE="0",
        VTX_MAX_ACTIVE_JOBS="0",
    ) as suite:
        yield suite


def test_odd_input_with_keys_and_media_tokens_is_never_a_5xx(
    keyed: Suite, speech_mp4: Path
) -> None:
    made = json.loads(keyed.vtx("keys", "create", "odd", "--json"))
    auth = {"Authorization": f"Bearer {made['key']}"}
    run_sweep(keyed, speech_mp4, auth)
    job_id = a_completed_job(keyed, speech_mp4, auth)
    answers = sweep(keyed, reads(job_id), {})  # without the header: tokens are read
    tokens = [a for a in answers if a.request.url.params.get("token")]
    assert tokens and all(a.status_code == 401 for a in tokens)
    for value in (b"Bearer " + HUGE.encode(), b"Bearer \xff", b"Basic \x7f", b"Bearer"):
        answer = httpx.get(f"{keyed.gateway}/v1/jobs", headers={"Authorization": value})
        assert answer.status_code == 401, answer.text


class _AnyPathServesMedia(http.server.BaseHTTPRequestHandler):
    media = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.media)))
        self.end_headers()
        self.wfile.write(self.media)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_a_url_whose_path_names_a_nul_is_stored_clean(suite: Suite, speech_mp4: Path) -> None:
    handler = type("Handler", (_AnyPathServesMedia,), {"media": speech_mp4.read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a%00b%1b%E2%80%AEc.mp4"
        form = raw_form((b"url", None, url.encode()))
        answer = httpx.post(f"{suite.gateway}/v1/jobs", content=form, headers=FORM, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 202, answer.text
    check_stored_names(suite, [answer], {})
