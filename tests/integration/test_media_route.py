"""`GET /v1/jobs/{id}/media`: a job's own upload, with HTTP Range, and nothing else."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.api.routes.media import ByteRange, Unsatisfiable, media_type, parse_range
from shared.config import Settings
from shared.media import probe
from shared.models import Job
from shared.store import media_key


@pytest.fixture
async def uploaded(
    gateway: tuple[FastAPI, httpx.AsyncClient], speech_mp4: Path
) -> tuple[httpx.AsyncClient, str, bytes]:
    """A job row and its stored media, as an upload leaves them (no queue involved)."""
    app, client = gateway
    res = app.state.resources
    body = speech_mp4.read_bytes()
    info = probe(speech_mp4)
    job = Job(
        media_key="",
        filename="talk.mp4",
        size_bytes=len(body),
        chunk_seconds=10,
        format_name=info.format_name,
        duration_s=info.duration_s,
        audio_codec=info.audio_codec,
        video_codec=info.video_codec,
        has_video=info.has_video,
    )
    job.media_key = media_key(job.id)
    await res.store.put_bytes(job.media_key, body)
    async with res.sessions() as session:
        session.add(job)
        await session.commit()
    return client, job.id, body


async def test_the_whole_file_comes_back_with_its_type(
    uploaded: tuple[httpx.AsyncClient, str, bytes],
) -> None:
    client, job_id, body = uploaded
    response = await client.get(f"/v1/jobs/{job_id}/media")
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(body))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "talk.mp4" in response.headers["content-disposition"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=5000-", 5000, None),
        ("bytes=-500", -500, None),
        ("bytes=100-999999999", 100, None),  # the end is clipped to the file
        ("bytes=-999999999", 0, None),  # a suffix longer than the file is all of it
    ],
)
async def test_a_range_gets_exactly_its_bytes(
    uploaded: tuple[httpx.AsyncClient, str, bytes], header: str, start: int, end: int | None
) -> None:
    client, job_id, body = uploaded
    size = len(body)
    response = await client.get(f"/v1/jobs/{job_id}/media", headers={"Range": header})
    assert response.status_code == 206, response.text
    first = start % size if start < 0 else start
    last = size - 1 if end is None else end
    assert response.content == body[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0", "bytes=211834-211900"])
async def test_a_range_past_the_end_is_416(
    uploaded: tuple[httpx.AsyncClient, str, bytes], header: str
) -> None:
    client, job_id, body = uploaded
    assert len(body) == 211834  # the last header names the first byte past the end
    response = await client.get(f"/v1/jobs/{job_id}/media", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(body)}"
    assert response.content == b""


@pytest.mark.parametrize("header", ["bytes=10-5", "bytes=abc", "items=0-10", "bytes=0-1,5-9"])
async def test_a_range_it_cannot_use_is_ignored(
    uploaded: tuple[httpx.AsyncClient, str, bytes], header: str
) -> None:
    client, job_id, body = uploaded
    response = await client.get(f"/v1/jobs/{job_id}/media", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == body


HUGE = "9" * 5000  # past Python's 4,300-digit int() limit: once a 500


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={HUGE}-".encode(),
        f"bytes=0-{HUGE}".encode(),
        f"bytes=-{HUGE}".encode(),
        f"bytes={'1' * 19}-".encode(),  # one digit more than numbers.MAX_DIGITS
        b"bytes=1_0-20",
        b"bytes=0x10-",
        b"bytes=+5-9",
        b"bytes=-5-",
        b"bytes=1-2-3",
        "bytes=\xb2-\xb3".encode("latin-1"),  # superscript digits: str.isdigit() says yes
        "bytes=\u0661\u0662-".encode(),
        b"bytes=\x00-5",
    ],
)
async def test_odd_numbers_in_a_range_are_ignored_never_an_error(
    uploaded: tuple[httpx.AsyncClient, str, bytes], header: bytes
) -> None:
    client, job_id, body = uploaded
    response = await client.get(f"/v1/jobs/{job_id}/media", headers={"Range": header})
    assert response.status_code == 200, response.text
    assert response.content == body


async def test_blanks_around_range_numbers_are_allowed(
    uploaded: tuple[httpx.AsyncClient, str, bytes],
) -> None:
    client, job_id, body = uploaded
    response = await client.get(f"/v1/jobs/{job_id}/media", headers={"Range": "bytes= 0 - 9 "})
    assert (response.status_code, response.content) == (206, body[:10])


def test_parse_range_reads_up_to_18_ascii_digits() -> None:
    assert parse_range("bytes=0-9", 100) == ByteRange(0, 9)
    with pytest.raises(Unsatisfiable):
        parse_range(f"bytes={'9' * 18}-", 100)
    assert parse_range(f"bytes={'9' * 19}-", 100) is None
    assert parse_range("bytes=\u0663-", 100) is None  # a regex's \d would have read it
    assert parse_range("bytes=0-\u0663", 100) is None


async def test_head_and_conditional_requests(
    uploaded: tuple[httpx.AsyncClient, str, bytes],
) -> None:
    client, job_id, body = uploaded
    url = f"/v1/jobs/{job_id}/media"
    head = await client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(body))
    assert head.headers["content-type"] == "video/mp4"
    etag = head.headers["etag"]
    ranged_head = await client.head(url, headers={"Range": "bytes=10-19"})
    assert ranged_head.status_code == 206
    assert ranged_head.headers["content-range"] == f"bytes 10-19/{len(body)}"

    assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
    same = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (same.status_code, same.content) == (206, body[:10])
    other = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (other.status_code, other.content) == (200, body)


async def test_only_a_jobs_own_media_can_be_read(
    gateway: tuple[FastAPI, httpx.AsyncClient],
    uploaded: tuple[httpx.AsyncClient, str, bytes],
    settings: Settings,
) -> None:
    _, client = gateway
    _, job_id, _ = uploaded
    store_root = settings.data_dir / "store"
    (store_root / "secret").write_bytes(b"not yours")
    (store_root / "media" / ("0" * 32 + ".bak")).write_bytes(b"not a job")

    unknown = await client.get(f"/v1/jobs/{'a' * 32}/media")
    assert unknown.status_code == 404
    assert "No job" in unknown.json()["detail"]
    probes = [
        f"/v1/jobs/{job_id[:-1]}/media",  # too short
        f"/v1/jobs/{job_id.upper()}/media",  # not lower-case hex
        "/v1/jobs/../secret/media",
        "/v1/jobs/..%2Fsecret/media",
        "/v1/jobs/..%2F..%2Fsecret/media",
        f"/v1/jobs/{job_id}%2F..%2F..%2Fsecret/media",
        "/v1/jobs/%2e%2e/media",
        f"/v1/jobs/{'0' * 32}.bak/media",
        f"/v1/jobs/{job_id}/media/../../secret",
        f"/v1/jobs/{job_id}%00/media",
    ]
    for path in probes:
        response = await client.get(path)
        assert response.status_code in (404, 422), (path, response.status_code)
        assert b"not yours" not in response.content and b"not a job" not in response.content

    # A job whose file has gone from the store is a 404, not a crash.
    (store_root / "media" / job_id).unlink()
    gone = await client.get(f"/v1/jobs/{job_id}/media")
    assert gone.status_code == 404
    assert "no longer stored" in gone.json()["detail"]


async def test_the_page_and_its_files_are_served_but_not_documented(
    gateway: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = gateway
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset, kind in (("main.js", "text/javascript"), ("app.css", "text/css")):
        assert f"/static/{asset}" in page.text
        response = await client.get(f"/static/{asset}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(kind)
    for path in ("/static/index.html", "/static/../main.py", "/static/..%2Fmain.py"):
        assert (await client.get(path)).status_code == 404
    spec = (await client.get("/openapi.json")).json()
    assert "/" not in spec["paths"]
    assert not any(p.startswith("/static") for p in spec["paths"])
    media = spec["paths"]["/v1/jobs/{job_id}/media"]
    assert set(media) == {"get"}
    assert {"200", "206", "404", "416"} <= set(media["get"]["responses"])


def test_parse_range_forms() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == ByteRange(2, 4)
    assert parse_range("bytes=7-", 10) == ByteRange(7, 9)
    assert parse_range("bytes=-3", 10) == ByteRange(7, 9)
    assert parse_range(" bytes = 0 - 0 ", 10) == ByteRange(0, 0)
    assert parse_range("bytes=-", 10) is None
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=10-", 10)
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=-1", 0)


@pytest.mark.parametrize(
    ("fmt", "video", "vcodec", "acodec", "expected"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", True, "h264", "aac", "video/mp4"),
        ("mov,mp4,m4a,3gp,3g2,mj2", False, None, "aac", "audio/mp4"),
        ("mp3", False, None, "mp3", "audio/mpeg"),
        ("wav", False, None, "pcm_s16le", "audio/wav"),
        ("flac", False, None, "flac", "audio/flac"),
        ("ogg", False, None, "opus", "audio/ogg"),
        ("matroska,webm", True, "vp9", "opus", "video/webm"),
        ("matroska,webm", False, None, "opus", "audio/webm"),
        ("matroska,webm", True, "h264", "aac", "video/x-matroska"),
        ("mpegts", True, "h264", "aac", "video/mp2t"),
        (None, None, None, None, "application/octet-stream"),
    ],
)
def test_the_content_type_follows_the_probe(
    fmt: str | None, video: bool | None, vcodec: str | None, acodec: str | None, expected: str
) -> None:
    job = Job(
        media_key="media/x",
        chunk_seconds=10,
        format_name=fmt,
        has_video=video,
        video_codec=vcodec,
        audio_codec=acodec,
    )
    assert media_type(job) == expected
