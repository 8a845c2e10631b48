"""`url` instead of `file`: the gateway downloads the media itself, and never from a
private, loopback or link-local address, whether named directly or through a redirect."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shared.config import Settings
from shared.pipeline.contracts import SPLIT_QUEUE
from tests.integration.conftest import gateway_for


class MediaServer:
    """Serves one file at /talk.mp4, redirects from /to?<url>, and counts every request."""

    def __init__(self, media: Path) -> None:
        self.hits: list[str] = []
        body = media.read_bytes()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                if self.path.startswith("/to?"):
                    self.send_response(302)
                    self.send_header("Location", self.path[4:])
                    self.end_headers()
                    return
                if self.path == "/big":
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"\0" * (2 * 1024 * 1024 + 10))
                    return
                self.send_response(200 if self.path == "/talk.mp4" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def media_server(speech_mp4: Path) -> Iterator[MediaServer]:
    server = MediaServer(speech_mp4)
    yield server
    server.server.shutdown()


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The normal mode: only public addresses."""
    async with gateway_for(settings) as pair:
        yield pair


@pytest.fixture
async def allowed(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The test-only mode: 127.0.0.1 (and nothing else private) is exempt."""
    exempt = settings.model_copy(
        update={"url_allow_networks": ["127.0.0.1/32"], "max_upload_mb": 2}
    )
    async with gateway_for(exempt) as pair:
        yield pair


async def submit_url(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.post("/v1/jobs", files={"url": (None, url)})


async def test_media_from_a_url_becomes_a_job(
    allowed: tuple[FastAPI, httpx.AsyncClient], media_server: MediaServer, speech_mp4: Path
) -> None:
    app, client = allowed
    response = await submit_url(client, f"{media_server.base}/talk.mp4")
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["filename"] == "talk.mp4"
    assert job["source_url"] == f"{media_server.base}/talk.mp4"
    assert job["media"]["audio_codec"] == "aac"
    res = app.state.resources
    assert (res.settings.data_dir / "store" / "media" / job["id"]).read_bytes() == (
        speech_mp4.read_bytes()
    )
    assert await res.queue.zcard(SPLIT_QUEUE) == 1
    assert not list(res.settings.uploads_dir.iterdir())  # nothing left in the spool


async def test_redirects_are_followed_and_checked_at_every_hop(
    allowed: tuple[FastAPI, httpx.AsyncClient], media_server: MediaServer
) -> None:
    _, client = allowed
    ok = await submit_url(client, f"{media_server.base}/to?{media_server.base}/talk.mp4")
    assert ok.status_code == 202, ok.text
    for target in ("http://10.0.0.1/talk.mp4", "http://127.0.0.2:9/x", "http://169.254.169.254/"):
        refused = await submit_url(client, f"{media_server.base}/to?{target}")
        assert refused.status_code == 422, refused.text
        assert "private, loopback, link-local" in refused.json()["detail"]


async def test_limits_and_bad_urls(
    allowed: tuple[FastAPI, httpx.AsyncClient], media_server: MediaServer
) -> None:
    _, client = allowed
    big = await submit_url(client, f"{media_server.base}/big")
    assert big.status_code == 413
    missing = await submit_url(client, f"{media_server.base}/nothing")
    assert missing.status_code == 422 and "404" in missing.json()["detail"]
    for bad in ("file:///etc/passwd", "ftp://example.com/a.mp3", "http://user:pw@example.com/"):
        assert (await submit_url(client, bad)).status_code == 422, bad
    both = await client.post(
        "/v1/jobs", files={"file": ("a.mp4", b"x"), "url": (None, f"{media_server.base}/talk.mp4")}
    )
    assert both.status_code == 422


async def test_private_addresses_are_refused_before_connecting(
    guarded: tuple[FastAPI, httpx.AsyncClient], media_server: MediaServer
) -> None:
    _, client = guarded
    before = len(media_server.hits)
    for url in (
        f"{media_server.base}/talk.mp4",
        f"http://localhost:{media_server.base.rsplit(':', 1)[1]}/talk.mp4",
        "http://[::1]/talk.mp4",
        "http://10.0.0.1/talk.mp4",
    ):
        refused = await submit_url(client, url)
        assert refused.status_code == 422, (url, refused.text)
        assert "only public addresses" in refused.json()["detail"]
    assert len(media_server.hits) == before  # no request ever reached the server


async def test_ipv6_forms_leading_elsewhere_are_refused(
    guarded: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = guarded
    for host in ("[64:ff9b::a00:1]", "[2002:a00:1::1]", "[::ffff:0:a00:1]", "[::127.0.0.1]"):
        refused = await submit_url(client, f"http://{host}/talk.mp4")
        assert refused.status_code == 422, (host, refused.text)
        assert "only public addresses" in refused.json()["detail"], host


async def test_a_refusal_names_the_host_never_the_address_it_resolved_to(
    guarded: tuple[FastAPI, httpx.AsyncClient], media_server: MediaServer
) -> None:
    _, client = guarded
    port = media_server.base.rsplit(":", 1)[1]
    refused = await submit_url(client, f"http://localhost:{port}/talk.mp4")
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert "'localhost' is not public" in detail and "127.0.0.1" not in detail
