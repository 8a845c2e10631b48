"""`/health/detailed`: a service that answers with something other than its JSON, and
the queues it shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY

from services.health.aggregate import detailed, service_status
from services.health.main import create_app
from shared.config import Settings
from shared.pipeline.contracts import CALLBACK_QUEUE, SPLIT_QUEUE
from shared.runtime import Resources
from tests.integration.conftest import migrated

PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
    + f"Content-Length: {len(PAGE)}\r\nConnection: close\r\n\r\n".encode()
    + PAGE
)


@pytest.fixture
async def html_502() -> AsyncIterator[str]:
    """A real HTTP server on a free port that answers every request as a proxy would
    when the service behind it is gone: 502 with an HTML page."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(BAD_GATEWAY)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()


async def test_an_html_error_page_is_a_service_down_with_its_reason(html_502: str) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        part = await service_status(client, "splitter", html_502)
    assert part["status"] == "down"
    assert "502" in part["error"] and "text/html" in part["error"]


async def test_detailed_stays_an_answer_when_a_service_answers_html(
    settings: Settings, html_502: str
) -> None:
    await migrated(settings)
    settings = settings.model_copy(update={"health_services": {"splitter": html_502}})
    app = create_app(settings)
    async with asyncio.timeout(30), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.get("/health/detailed")
    assert response.status_code == 200  # degraded: no gateway in this document
    splitter = response.json()["services"]["splitter"]
    assert splitter["status"] == "down"
    assert "502" in splitter["error"]


async def test_callback_retries_are_shown_and_exported_but_judge_nothing(
    resources: Resources,
) -> None:
    """Deferred retries for receivers that are down wait in the callbacks queue by
    design; work in a queue that nobody serves makes the suite degraded."""
    resources.settings.health_services = {}
    await resources.queue.zadd(CALLBACK_QUEUE, {f"callback-{n}": 1 for n in range(3)})
    async with httpx.AsyncClient(timeout=5) as client:
        document = await detailed(resources, client)
        assert document["queues"]["callbacks"] == 3
        assert document["status"] == "ok", document
        depth = REGISTRY.get_sample_value("vtx_queue_depth", {"queue": "callbacks"})
        assert depth == 3
        await resources.queue.zadd(SPLIT_QUEUE, {"split-1": 1})
        document = await detailed(resources, client)
    assert document["queues"]["split"] == 1
    assert document["status"] == "degraded", document
