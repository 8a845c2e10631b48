"""Streaming multipart uploads straight to a spool file beside the object store.

Starlette's form parser would first copy the file into a temporary file of its own;
this parser writes each piece as it arrives, counts bytes as it goes, and stops at
the size limit, so memory stays flat whatever the upload's size. The parser's
callbacks only collect the file's bytes (at most FLUSH_BYTES and one body chunk); a
worker thread writes them to disk, so the gateway's event loop never waits on the disk.

Everything around the file is bounded too, and decided while the body streams in
(with or without Content-Length): a field name the endpoint does not take is refused
the moment its part's headers end; more than `max_form_fields` other parts, more than
`max_form_bytes` of their headers and values together, or more than PART_HEADER_BYTES
of headers on one part, the moment it arrives. Those are 422 (the form is wrong);
413 is kept for the file itself being larger than VTX_MAX_UPLOAD_MB.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio import AsyncFile
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from services.gateway.numbers import NotANumber, digits
from services.gateway.problems import (
    InvalidField,
    NotMedia,
    Problem,
    StorageFull,
    TooLarge,
    UnreadableBody,
    is_no_space,
)
from shared.config import Settings
from shared.files import remove

FILE_FIELD = "file"
PART_HEADER_BYTES = 8 * 1024  # one part's headers, all lines together
PART_FRAMING_BYTES = 64  # per part: CRLFs, dashes and ': ' around the boundary and headers
FILENAME_CHARS = 255
FLUSH_BYTES = 1024 * 1024  # file data held before a thread writes it out

# C0, DEL and C1 controls, and the bidirectional and line-separator format characters
# that make a name display as something else.
_UNSAFE_IN_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class FormLimits:
    """What one request's form may hold: the file, and everything else."""

    max_file_bytes: int
    max_fields: int
    max_field_bytes: int  # headers and values of every part, together, besides file data

    @classmethod
    def of(cls, settings: Settings) -> FormLimits:
        return cls(settings.max_upload_bytes, settings.max_form_fields, settings.max_form_bytes)

    def framing(self, boundary: bytes) -> int:
        """Bytes a valid form spends on boundaries and line breaks at most."""
        return (self.max_fields + 2) * (len(boundary) + PART_FRAMING_BYTES)


@dataclass
class Upload:
    path: Path
    size: int = 0
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)  # every value, repeats kept
    has_file: bool = False

    async def discard(self) -> None:
        await remove(self.path)


def too_large(max_bytes: int) -> TooLarge:
    return TooLarge(
        f"The upload is larger than the limit of {max_bytes // (1024 * 1024)} MB "
        "(VTX_MAX_UPLOAD_MB).",
    )


def clean_filename(name: str) -> str | None:
    """A client's file name fit to store and show: no control or direction-changing
    characters, no surrounding space, at most FILENAME_CHARS characters; None if empty."""
    cleaned = _UNSAFE_IN_NAME.sub("", name).strip()[:FILENAME_CHARS].strip()
    return cleaned or None


def _shown(name: str) -> str:
    """A field name for a message: printable and short, whatever the client sent."""
    short = name[:64] + ("..." if len(name) > 64 else "")
    return short.encode("ascii", "backslashreplace").decode("ascii")


class _Parts:
    """Callbacks for python-multipart: route the file part to disk, keep small fields."""

    def __init__(
        self, upload: Upload, sink: AsyncFile[bytes], limits: FormLimits, accepted: Sequence[str]
    ) -> None:
        self.upload = upload
        self.sink = sink
        self.pending = bytearray()  # file data the parser gave, not yet on disk
        self.limits = limits
        self.accepted = accepted
        self.fields = 0  # non-file parts so far
        self.field_bytes = 0  # their headers and values, and the file part's headers
        self._header_bytes = 0  # of the part being read
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""
        self._field: str | None = None
        self._is_file = False
        self._buffer = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self._headers, self._field, self._is_file = {}, None, False
        self._header_bytes = 0
        self._buffer.clear()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._field = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = self._field == FILE_FIELD
        if self._field not in self.accepted:
            raise InvalidField(
                f"The form field '{_shown(self._field)}' is not one this endpoint takes; "
                f"it takes: {', '.join(self.accepted)}.",
                param=self._field,
            )
        if self._is_file:
            if self.upload.has_file:
                raise InvalidField("Send exactly one file per job.", param=FILE_FIELD)
            self.upload.has_file = True
            name = options.get(b"filename")
            self.upload.filename = clean_filename(name.decode("utf-8", "replace")) if name else None
            return
        self.fields += 1
        if self.fields > self.limits.max_fields:
            raise InvalidField(
                f"The form has more than {self.limits.max_fields} fields besides the file "
                "(VTX_MAX_FORM_FIELDS).",
            )

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.upload.size += end - start
            if self.upload.size > self.limits.max_file_bytes:
                raise too_large(self.limits.max_file_bytes)
            self.pending += data[start:end]
            return
        self._count_field(end - start)
        self._buffer += data[start:end]

    def part_end(self) -> None:
        if not self._is_file and self._field:
            value = self._buffer.decode("utf-8", "replace")
            self.upload.fields[self._field] = value
            self.upload.lists.setdefault(self._field, []).append(value)

    async def flush(self, at_least: int = 0) -> None:
        """Hand the collected file data to a thread to write, once there is `at_least`."""
        if self.pending and len(self.pending) >= at_least:
            data, self.pending = bytes(self.pending), bytearray()
            await self.sink.write(data)

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > PART_HEADER_BYTES:
            raise part_headers_too_long()
        self._count_field(size)

    def _count_field(self, size: int) -> None:
        self.field_bytes += size
        if self.field_bytes > self.limits.max_field_bytes:
            raise InvalidField(
                f"The form's fields besides the file (names, headers and values) exceed "
                f"{self.limits.max_field_bytes // 1024} KiB together (VTX_MAX_FORM_BYTES).",
            )


def part_headers_too_long() -> InvalidField:
    return InvalidField(
        f"A part of the form has more than {PART_HEADER_BYTES // 1024} KiB of headers "
        "(a file name that long is not kept anyway).",
    )


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise NotMedia(
            "Send the media as multipart/form-data with a field named 'file' "
            "(curl -F file=@talk.mp4 ...).",
        )
    return boundary


def _body_limit(limits: FormLimits, boundary: bytes) -> int:
    return limits.max_file_bytes + limits.max_field_bytes + limits.framing(boundary)


def _check_declared_length(request: Request, limits: FormLimits, boundary: bytes) -> None:
    try:
        declared = digits(request.headers.get("content-length", ""))
    except NotANumber:
        return  # absent (chunked), or malformed, which the HTTP server refuses itself
    if declared > _body_limit(limits, boundary):
        raise too_large(limits.max_file_bytes)


async def receive_upload(
    request: Request,
    spool_dir: Path,
    limits: FormLimits,
    accepted: Sequence[str],
    url_field: str | None = None,
) -> Upload:
    """Parse the request body into a spool file; the caller owns (and discards) the file.

    `accepted` names every field the form may have (`file` among them); with `url_field`,
    a form may name the media by URL in that field instead of a file.
    """
    boundary = _boundary(request)
    _check_declared_length(request, limits, boundary)
    upload = Upload(path=await anyio.to_thread.run_sync(spool_file, spool_dir, "upload-"))
    try:
        async with await anyio.open_file(upload.path, "wb") as handle:
            await _parse(request, boundary, _Parts(upload, handle, limits, accepted))
    except Problem:
        await upload.discard()
        raise
    except OSError as exc:  # the spool's disk, not the client: a server fault
        await upload.discard()
        await _close(request)
        if is_no_space(exc):
            raise StorageFull() from exc
        raise
    except Exception as exc:
        await upload.discard()
        await _close(request)
        raise UnreadableBody(f"The multipart body could not be read: {_reason(exc)}") from exc
    by_url = bool(url_field and upload.fields.get(url_field, "").strip())
    if upload.has_file and by_url:
        await upload.discard()
        raise InvalidField(f"Send either a field named 'file' or '{url_field}', not both.")
    if not upload.has_file and not by_url:
        await upload.discard()
        also = f" (or '{url_field}' with its http(s) URL)" if url_field else ""
        raise InvalidField(
            f"The form needs a field named 'file' holding the media{also}.", param=FILE_FIELD
        )
    return upload


async def _close(request: Request) -> None:
    with contextlib.suppress(Exception):
        await request.close()


def _reason(exc: Exception) -> str:
    """What was wrong with the body, as the multipart parser says it; anything else is
    named only by its kind (its text may be the server's, not the client's)."""
    if isinstance(exc, MultipartParseError):
        return str(exc)
    return f"{type(exc).__name__}."


def spool_file(spool_dir: Path, prefix: str) -> Path:
    """A new, empty spool file with a server-chosen name (blocks: run it in a thread)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix=prefix)
    os.close(fd)
    return Path(name)


async def _parse(request: Request, boundary: bytes, parts: _Parts) -> None:
    """Feed the body to the parser; bytes that are neither file, fields nor framing
    (an endless preamble or epilogue) are refused too, as they arrive."""
    parser = MultipartParser(
        boundary,
        parts.callbacks(),  # type: ignore[arg-type]
        max_header_size=PART_HEADER_BYTES,
    )
    besides_file = parts.limits.max_field_bytes + parts.limits.framing(boundary)
    received = 0
    try:
        async for data in request.stream():
            parser.write(data)
            await parts.flush(at_least=FLUSH_BYTES)
            received += len(data)
            if received - parts.upload.size > besides_file:
                raise InvalidField(
                    "The body holds more than its file and form fields explain; "
                    "send one multipart/form-data form.",
                )
        parser.finalize()
        await parts.flush()
    except MultipartParseError as exc:
        if str(exc).startswith("Maximum header"):  # the parser's own per-line and count caps
            raise part_headers_too_long() from exc
        raise
