"""Run one service in this process with uvicorn (what `vtx <service>` and containers do).

Every server bounds what a client may hold: connections (`VTX_MAX_CONNECTIONS`, then
503), header size, the time to send the headers (`VTX_HEADER_TIMEOUT_S`) and pauses in
a body (`VTX_BODY_IDLE_TIMEOUT_S`), both answered 408 and closed. uvicorn has no such
timeouts of its own: `GuardedH11Protocol` adds them.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import multiprocessing
import os
import shutil
import signal
from dataclasses import dataclass
from types import FrameType
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from services.cli.supervise import die_with_parent
from shared.config import Service, Settings

APP_MODULES: dict[str, str] = {
    "gateway": "services.gateway.main",
    "splitter": "services.splitter.main",
    "transcriber": "services.transcriber.main",
    "speakers": "services.speakers.main",
    "health": "services.health.main",
}
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
MAX_HEADER_BYTES = 16 * 1024  # request line and headers together; larger is a 400


@dataclass(frozen=True)
class ClientTimeouts:
    header_s: float
    body_idle_s: float


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers (from the first
    byte, or from the connection for its first request) and a limit on pauses within a
    body. A pause the server causes (it reads slowly, or owes a `100 Continue`) does not
    count."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        timeouts: ClientTimeouts,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.timeouts = timeouts
        self._deadline: asyncio.TimerHandle | None = None
        self._last_data = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.timeouts.header_s)

    def data_received(self, data: bytes) -> None:
        self._last_data = self.loop.time()
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._deadline is None:
                self._arm(self.timeouts.body_idle_s)
        elif state is h11.IDLE:
            if self._deadline is None:
                self._arm(self.timeouts.header_s)
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.SEND_BODY:
            idle = self.loop.time() - self._last_data
            if idle < self.timeouts.body_idle_s or self._waiting_on_us():
                self._arm(max(self.timeouts.body_idle_s - idle, 0.1))
                return
            self._close(f"the request body paused for over {self.timeouts.body_idle_s:g} s")
        elif self.conn.their_state is h11.IDLE:
            self._close(f"the request headers took over {self.timeouts.header_s:g} s")

    def _waiting_on_us(self) -> bool:
        cycle = self.cycle
        return self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue)

    def _close(self, why: str) -> None:
        """408 unless a response has begun; the app sees a disconnect, never this answer."""
        cycle = self.cycle
        answer = cycle is None or cycle.response_complete or not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if answer:
            body = f"Request timeout: {why}. Send the whole request without pausing.".encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()


def build(service: Service, settings: Settings) -> FastAPI:
    """Import only the service asked for: the gateway never loads the speech model."""
    app: FastAPI = importlib.import_module(APP_MODULES[service]).create_app(settings)
    return app


def transcriber_process() -> FastAPI:
    """uvicorn's factory in each of several transcriber processes: it dies with its parent."""
    parent = multiprocessing.parent_process()
    die_with_parent(signal.SIGTERM, parent.pid if parent is not None else None)
    return build("transcriber", Settings())


def _exit_quietly(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn shuts down gracefully, then re-raises the signal; by then, exit 0."""


def server_options(service: Service, settings: Settings) -> dict[str, Any]:
    timeouts = ClientTimeouts(settings.header_timeout_s, settings.body_idle_timeout_s)
    return {
        "host": settings.host,
        "port": settings.port(service),
        "log_config": None,
        "timeout_graceful_shutdown": 10,
        "http": functools.partial(GuardedH11Protocol, timeouts=timeouts),
        "ws": "none",
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }


def serve(service: Service, settings: Settings) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_quietly)
    options = server_options(service, settings)
    processes = 1
    if service == "transcriber":
        from services.transcriber.engine import layout

        processes = layout(settings).processes
    if processes == 1:
        uvicorn.run(build(service, settings), **options)
        return
    # Several processes share the port; each loads its own model and runs its own worker.
    # Their metrics meet in one folder, so /metrics answers for all of them.
    metrics_dir = settings.data_dir / "metrics" / service
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    target = f"{__name__}:transcriber_process"
    uvicorn.run(target, factory=True, workers=processes, **options)
