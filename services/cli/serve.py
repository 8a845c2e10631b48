"""Run one service in this process with uvicorn (what `vtx <service>` and containers do)."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
from types import FrameType
from typing import Any

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
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port(service),
        "log_config": None,
        "timeout_graceful_shutdown": 10,
    }
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
    target = f"{APP_MODULES[service]}:create_app"
    uvicorn.run(target, factory=True, workers=processes, **options)
