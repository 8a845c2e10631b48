"""VTX_DETECT_BLOCKING: a service's lifespan runs under the detector, and only with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from blockbuster import BlockingError
from fastapi import FastAPI

from shared import secrets
from shared.config import Settings
from shared.service import service_app


@asynccontextmanager
async def nothing(_app: FastAPI) -> AsyncIterator[None]:
    yield


async def test_the_setting_fails_a_blocking_call_while_the_service_runs(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, detect_blocking=True, log_format="console")
    app = service_app("test", settings, nothing)
    async with app.router.lifespan_context(app):
        with pytest.raises(BlockingError):
            secrets.secret(settings, "media")  # reads a file, on the loop
    assert secrets.secret(settings, "media")  # the service stopped: the detector is off


async def test_without_it_nothing_is_detected(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, log_format="console")
    app = service_app("test", settings, nothing)
    async with app.router.lifespan_context(app):
        assert secrets.secret(settings, "media")
