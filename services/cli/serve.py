"""Run one service in this process with uvicorn (what `vtx <service>` and containers do)."""

from __future__ import annotations

import importlib
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

from shared.config import Service, Settings

APP_MODULES: dict[str, str] = {
    "gateway": "services.gateway.main",
    "splitter": "services.splitter.main",
    "transcriber": "services.transcriber.main",
    "health": "services.health.main",
}


def build(service: Service, settings: Settings) -> FastAPI:
    """Import only the service asked for: the gateway never loads the speech model."""
    app: FastAPI = importlib.import_module(APP_MODULES[service]).create_app(settings)
    return app


def _exit_quietly(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn shuts down gracefully, then re-raises the signal; by then, exit 0."""


def serve(service: Service, settings: Settings) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_quietly)
    uvicorn.run(
        build(service, settings),
        host=settings.host,
        port=settings.port(service),
        log_config=None,
        timeout_graceful_shutdown=10,
    )
