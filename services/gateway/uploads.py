"""Streaming multipart uploads straight to a spool file beside the object store.

Starlette's form parser would first copy the file into a temporary file of its own;
this parser writes each piece as it arrives, counts bytes as it goes, and stops at
the size limit, so memory stays flat whatever the upload's size.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import Request, status
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELD = "file"
MAX_FIELD_BYTES = 8192
FORM_OVERHEAD = 64 * 1024  # boundaries, headers and small fields around the file


class UploadError(Exception):
    """A refused upload: the status code and a message a person can act on."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass
class Upload:
    path: Path
    size: int = 0
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)  # every value, repeats kept
    has_file: bool = False

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def too_large(max_bytes: int) -> UploadError:
    return UploadError(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"The upload is larger than the limit of {max_bytes // (1024 * 1024)} MB "
        "(VTX_MAX_UPLOAD_MB).",
    )


class _Parts:
    """Callbacks for python-multipart: route the file part to disk, keep small fields."""

    def __init__(self, upload: Upload, sink: IO[bytes], max_bytes: int) -> None:
        self.upload = upload
        self.sink = sink
        self.max_bytes = max_bytes
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
        self._buffer.clear()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._field = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = self._field == FILE_FIELD
        if self._is_file:
            if self.upload.has_file:
                raise UploadError(422, "Send exactly one file per job.")
            self.upload.has_file = True
            name = options.get(b"filename")
            self.upload.filename = name.decode("utf-8", "replace")[:255] if name else None

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.upload.size += end - start
            if self.upload.size > self.max_bytes:
                raise too_large(self.max_bytes)
            self.sink.write(data[start:end])
            return
        self._buffer += data[start:end]
        if len(self._buffer) > MAX_FIELD_BYTES:
            raise UploadError(422, f"The form field '{self._field}' is too long.")

    def part_end(self) -> None:
        if not self._is_file and self._field:
            value = self._buffer.decode("utf-8", "replace")
            self.upload.fields[self._field] = value
            self.upload.lists.setdefault(self._field, []).append(value)


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadError(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "Send the media as multipart/form-data with a field named 'file' "
            "(curl -F file=@talk.mp4 ...).",
        )
    return boundary


def _check_declared_length(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise too_large(max_bytes)


async def receive_upload(
    request: Request, spool_dir: Path, max_bytes: int, url_field: str | None = None
) -> Upload:
    """Parse the request body into a spool file; the caller owns (and discards) the file.

    With `url_field`, a form may name the media by URL in that field instead of a file.
    """
    boundary = _boundary(request)
    _check_declared_length(request, max_bytes)
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix="upload-")
    upload = Upload(path=Path(name))
    try:
        with os.fdopen(fd, "wb") as handle:
            parts = _Parts(upload, handle, max_bytes)
            parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
            async for data in request.stream():
                parser.write(data)
            parser.finalize()
    except UploadError:
        upload.discard()
        raise
    except Exception as exc:
        upload.discard()
        with contextlib.suppress(Exception):
            await request.close()
        raise UploadError(400, f"The multipart body could not be read: {exc}") from exc
    by_url = bool(url_field and upload.fields.get(url_field, "").strip())
    if upload.has_file and by_url:
        upload.discard()
        raise UploadError(422, f"Send either a field named 'file' or '{url_field}', not both.")
    if not upload.has_file and not by_url:
        upload.discard()
        also = f" (or '{url_field}' with its http(s) URL)" if url_field else ""
        raise UploadError(422, f"The form needs a field named 'file' holding the media{also}.")
    return upload
