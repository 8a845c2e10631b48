"""`/v1/jobs/{id}/media`: a job's own uploaded file, played back with HTTP Range.

The route takes only a job id, checked to be hex and looked up in the database, and
reads the one store key the server chose for that job (`media/<id>`): no client
text ever reaches a store path. The stored object has no extension, so the content
type comes from what the probe learned at upload (`format_name`, codecs).

Access: a `<video>`/`<audio>` element cannot send an `Authorization` header, so
with API keys on, `media_access` accepts, besides the header, a short-lived token
signed for this job id in the `token` query parameter (the job's `links.media`
carries one). Another key's job, like an unknown one, is 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse

from services.gateway.auth import (
    KEY_REQUIRED,
    MEDIA_LINK_REFUSED,
    bearer,
    identify,
    keys_required,
    media_token_accepted,
    unauthorized,
)
from services.gateway.deps import ResourcesDep, SessionDep
from services.gateway.errors import AUTH_ERRORS
from services.gateway.lookups import JOB_ID_PATTERN, job_or_404
from services.gateway.numbers import NotANumber, digits
from services.gateway.problems import NotFound
from services.gateway.schemas import ErrorOut
from shared.models import Job
from shared.store import media_key

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Annotated[
    str,
    PathParam(
        pattern=JOB_ID_PATTERN,
        min_length=32,
        max_length=32,
        description="The job's id (32 hex digits).",
    ),
]


async def media_access(
    request: Request,
    session: SessionDep,
    res: ResourcesDep,
    job_id: JobId,
    token: Annotated[
        str | None, Query(description="A media token from the job's links.media.")
    ] = None,
) -> None:
    """Who may read this job's media: anyone while the API is open; with API keys on,
    the owner's `Authorization` header, or a `token` signed for `job_id` and its owner's
    key, unexpired, while that key is not revoked (401 otherwise, also for a token of
    any other shape or length; another key's job is 404, as an unknown one)."""
    if not await keys_required(res):
        return
    if bearer(request) is None and token:
        if await media_token_accepted(session, request.app.state.media_secret, job_id, token):
            return
        raise unauthorized(MEDIA_LINK_REFUSED)
    if bearer(request) is None:
        raise unauthorized(KEY_REQUIRED)
    await job_or_404(session, job_id, await identify(request, res))


MediaAccess = Annotated[None, Depends(media_access)]


# ---------------------------------------------------------------- content type
def media_type(job: Job) -> str:
    """A browser-playable MIME type from the probe's container name and streams."""
    formats = set((job.format_name or "").split(","))
    video = bool(job.has_video)
    if formats & {"mov", "mp4", "m4a"}:
        return "video/mp4" if video else "audio/mp4"
    if formats & {"matroska", "webm"}:
        webm = (job.video_codec in (None, "vp8", "vp9", "av1")) and (
            job.audio_codec in (None, "opus", "vorbis")
        )
        kind = "webm" if webm else "x-matroska"
        return f"{'video' if video else 'audio'}/{kind}"
    if "ogg" in formats:
        return "video/ogg" if video else "audio/ogg"
    simple = {
        "mp3": "audio/mpeg",
        "wav": "audio/wav",
        "flac": "audio/flac",
        "aac": "audio/aac",
        "mpegts": "video/mp2t",
    }
    for name, mime in simple.items():
        if name in formats:
            return mime
    return "application/octet-stream"


# ---------------------------------------------------------------------- ranges
@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """The Range names no byte of the file: answer 416."""


# RFC 9110's `bytes=first-last` or `bytes=-suffix`, ASCII digits only, optional blanks.
_RANGE = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*")


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One `bytes=` range of a `size`-byte file; None means "send it all" (RFC 9110 14.2).

    Headers that do not parse, other units, multiple ranges and numbers longer than
    numbers.MAX_DIGITS are ignored (a 200 is always a valid answer); a well-formed
    range past the end raises Unsatisfiable.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _RANGE.fullmatch(spec)
    if match is None:
        return None
    try:
        first, last = (digits(text) if text else None for text in match.groups())
    except NotANumber:
        return None
    if first is not None:
        if last is not None and last < first:
            return None  # invalid syntax: ignore the header
        if first >= size:
            raise Unsatisfiable
        return ByteRange(first, size - 1 if last is None else min(last, size - 1))
    if last is None:
        return None  # "bytes=-"
    if last == 0 or size == 0:
        raise Unsatisfiable
    return ByteRange(max(size - last, 0), size - 1)


# ---------------------------------------------------------------------- routes
MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}, "audio/mpeg": {}}, "description": "The whole file."},
    206: {"description": "The bytes the Range header asked for, with Content-Range."},
    304: {"description": "Unchanged since the ETag in If-None-Match."},
    404: {"model": ErrorOut, "description": "No job with this id, or its media is gone."},
    416: {"description": "The Range lies past the end of the file."},
    **AUTH_ERRORS,
}


@dataclass(frozen=True)
class _Media:
    job: Job
    key: str
    size: int
    etag: str
    headers: dict[str, str]


async def _media(session: SessionDep, res: ResourcesDep, job_id: str) -> _Media:
    job = await job_or_404(session, job_id, None)  # access: media_access
    key = media_key(job.id)
    size = await res.store.size(key)
    if size is None:
        raise NotFound("This job's media is no longer stored.")
    etag = f'"{job.id}-{size}"'  # a job's media never changes: id and size name it
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": _disposition(job),
    }
    return _Media(job, key, size, etag, headers)


def _disposition(job: Job) -> str:
    name = job.filename or f"{job.id}"
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name)[:100] or job.id
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(name[:200], safe='')}"


def _plan(request: Request, media: _Media) -> tuple[int, ByteRange | None, dict[str, str]]:
    """Status, the range to send (None: all of it) and the headers, before any byte is read."""
    headers = dict(media.headers)
    if media.etag in _etags(request.headers.get("if-none-match")):
        return status.HTTP_304_NOT_MODIFIED, None, headers
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != media.etag:
        range_header = None  # the client's copy is another file: send the whole one
    try:
        chosen = parse_range(range_header, media.size)
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{media.size}"
        return status.HTTP_416_RANGE_NOT_SATISFIABLE, None, headers
    if chosen is None:
        headers["Content-Length"] = str(media.size)
        return status.HTTP_200_OK, None, headers
    headers["Content-Range"] = f"bytes {chosen.start}-{chosen.end}/{media.size}"
    headers["Content-Length"] = str(chosen.length)
    return status.HTTP_206_PARTIAL_CONTENT, chosen, headers


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


@router.get(
    "/{job_id}/media",
    summary="The uploaded file, for playback (supports Range)",
    response_class=Response,
    responses=MEDIA_RESPONSES,
)
async def get_job_media(
    request: Request, session: SessionDep, res: ResourcesDep, job_id: JobId, _: MediaAccess
) -> Response:
    media = await _media(session, res, job_id)
    code, chosen, headers = _plan(request, media)
    mime = media_type(media.job)
    if code in (status.HTTP_304_NOT_MODIFIED, status.HTTP_416_RANGE_NOT_SATISFIABLE):
        return Response(status_code=code, headers=headers)
    start, length = (chosen.start, chosen.length) if chosen else (0, media.size)
    body = res.store.read_range(media.key, start, length)
    return StreamingResponse(body, status_code=code, media_type=mime, headers=headers)


@router.head("/{job_id}/media", include_in_schema=False)
async def head_job_media(
    request: Request, session: SessionDep, res: ResourcesDep, job_id: JobId, _: MediaAccess
) -> Response:
    media = await _media(session, res, job_id)
    code, _range, headers = _plan(request, media)
    headers["Content-Type"] = media_type(media.job)
    return Response(status_code=code, headers=headers)
