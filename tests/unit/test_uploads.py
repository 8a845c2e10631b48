"""The streaming form parser: the file to disk, everything around it bounded, as it streams.

Form limits are 422 (the form is wrong); 413 is the file's size alone.

Requests are real Starlette requests fed by an ASGI `receive` that hands out the body
piece by piece and counts what was taken, so a test can see a refusal came early.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.types import Message

from services.gateway.errors import status_of
from services.gateway.problems import Problem
from services.gateway.uploads import (
    FILENAME_CHARS,
    FormLimits,
    Upload,
    clean_filename,
    receive_upload,
)

BOUNDARY = "vtx-test-boundary"
NAMES = ("file", "language", "prompt")
LIMITS = FormLimits(max_file_bytes=1024 * 1024, max_fields=4, max_field_bytes=2048)


class Body:
    """An ASGI receive over these pieces; `taken` says how many were read."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces = pieces
        self.taken = 0

    async def __call__(self) -> Message:
        piece = next(self.pieces, None)
        if piece is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.taken += 1
        return {"type": "http.request", "body": piece, "more_body": True}


def field(name: str, value: str | bytes, headers: str = "") -> bytes:
    data = value.encode() if isinstance(value, str) else value
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n{headers}\r\n'
    return head.encode() + data + b"\r\n"


def file_part(data: bytes, filename: str = "talk.wav") -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    )
    return head.encode() + data + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


def request(body: Body, length: int | None = None) -> Request:
    headers = [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "method": "POST", "path": "/v1/jobs", "headers": headers}
    return Request(scope, body)


async def receive(tmp_path: Path, *pieces: bytes, names: tuple[str, ...] = NAMES) -> Upload:
    return await receive_upload(request(Body(iter(pieces))), tmp_path, LIMITS, names)


async def test_the_file_goes_to_disk_and_fields_are_kept(tmp_path: Path) -> None:
    upload = await receive(
        tmp_path, field("language", "en"), file_part(b"RIFF" * 100), field("prompt", "Ann"), END
    )
    assert upload.path.read_bytes() == b"RIFF" * 100
    assert (upload.size, upload.filename) == (400, "talk.wav")
    assert upload.fields == {"language": "en", "prompt": "Ann"}


async def test_an_unknown_field_is_refused_by_name_before_the_rest_is_read(
    tmp_path: Path,
) -> None:
    body = Body(iter([field("colour", "blue"), *(file_part(b"x" * 1000) for _ in range(50))]))
    with pytest.raises(Problem) as info:
        await receive_upload(request(body), tmp_path, LIMITS, NAMES)
    assert status_of(info.value) == 422
    assert "'colour'" in info.value.message
    assert "it takes: file, language, prompt" in info.value.message
    assert body.taken == 1
    assert list(tmp_path.iterdir()) == []  # the spool file is gone


async def test_more_fields_than_allowed_is_422_at_the_first_one_too_many(tmp_path: Path) -> None:
    endless = (field("language", "en") for _ in range(100_000))
    body = Body(endless)
    with pytest.raises(Problem) as info:
        await receive_upload(request(body), tmp_path, LIMITS, NAMES)
    assert status_of(info.value) == 422
    assert "more than 4 fields" in info.value.message
    assert "VTX_MAX_FORM_FIELDS" in info.value.message
    assert body.taken == LIMITS.max_fields + 1


async def test_field_bytes_are_counted_together_headers_included(tmp_path: Path) -> None:
    body = Body(iter([field("prompt", "a" * 980), field("prompt", "b" * 980), field("prompt", "")]))
    with pytest.raises(Problem) as info:
        await receive_upload(request(body), tmp_path, LIMITS, NAMES)
    assert status_of(info.value) == 422
    assert "2 KiB" in info.value.message and "VTX_MAX_FORM_BYTES" in info.value.message
    # 1,960 bytes of values alone fit in 2,048; the parts' headers make the difference
    assert body.taken == 3


async def test_one_long_value_is_cut_while_it_streams(tmp_path: Path) -> None:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'.encode()
    body = Body(iter([head, *(b"z" * 512 for _ in range(10_000))]))
    with pytest.raises(Problem, match="VTX_MAX_FORM_BYTES"):
        await receive_upload(request(body), tmp_path, LIMITS, NAMES)
    assert body.taken < 10


@pytest.mark.parametrize("size", [9 * 1024, 64 * 1024])
async def test_long_part_headers_are_422(tmp_path: Path, size: int) -> None:
    limits = FormLimits(1024 * 1024, 4, 1024 * 1024)
    body = Body(iter([field("language", "en", headers=f"X-Pad: {'p' * size}\r\n"), END]))
    with pytest.raises(Problem, match="KiB of headers") as info:
        await receive_upload(request(body), tmp_path, limits, NAMES)
    assert status_of(info.value) == 422


async def test_an_endless_epilogue_is_refused(tmp_path: Path) -> None:
    tail = (b"e" * 4096 for _ in range(10_000))
    body = Body(iter([file_part(b"x" * 10), END, *tail]))
    with pytest.raises(Problem, match="more than its file and form fields") as info:
        await receive_upload(request(body), tmp_path, LIMITS, NAMES)
    assert status_of(info.value) == 422
    assert body.taken < 20


async def test_a_declared_length_past_every_limit_is_refused_unread(tmp_path: Path) -> None:
    body = Body(iter([file_part(b"x")]))
    with pytest.raises(Problem, match="VTX_MAX_UPLOAD_MB") as info:
        await receive_upload(request(body, length=2 * 1024 * 1024), tmp_path, LIMITS, NAMES)
    assert status_of(info.value) == 413
    assert body.taken == 0


async def test_the_file_counts_against_its_own_limit_not_the_forms(tmp_path: Path) -> None:
    big = file_part(b"x" * (LIMITS.max_file_bytes - 10))
    upload = await receive(tmp_path, field("language", "en"), big, END)
    assert upload.size == LIMITS.max_file_bytes - 10
    with pytest.raises(Problem, match="VTX_MAX_UPLOAD_MB"):
        await receive(tmp_path, file_part(b"x" * (LIMITS.max_file_bytes + 1)), END)


async def test_a_second_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Problem, match="exactly one file"):
        await receive(tmp_path, file_part(b"a"), file_part(b"b"), END)


async def test_the_file_name_is_cleaned(tmp_path: Path) -> None:
    odd = "a\x00b\x1b[31mc\u202etxt.exe" + "n" * 1000
    upload = await receive(tmp_path, file_part(b"x", filename=odd), END)
    assert upload.filename is not None
    assert upload.filename.startswith("ab[31mctxt.exe")
    assert len(upload.filename) == FILENAME_CHARS


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("talk.mp4", "talk.mp4"),
        ("a\x00b.wav", "ab.wav"),
        ("tab\tnew\nline\r.mp3", "tabnewline.mp3"),
        ("del\x7fc1\x85\x9f.ogg", "delc1.ogg"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("iso\u2066late\u2069\u200f\u061c.flac", "isolate.flac"),
        ("para\u2028graph.wav", "paragraph.wav"),
        ("Grüße 東京 👩‍👩‍👧.m4a", "Grüße 東京 👩‍👩‍👧.m4a"),
        ("  padded.wav  ", "padded.wav"),
        ("\x00\x01\u202e", None),
        ("", None),
    ],
)
def test_clean_filename(name: str, cleaned: str | None) -> None:
    assert clean_filename(name) == cleaned


def test_clean_filename_caps_characters_not_bytes() -> None:
    assert clean_filename("東" * 10_000) == "東" * FILENAME_CHARS
