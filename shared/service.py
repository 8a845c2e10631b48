"""What every service's `create_app` shares: logging, probes, metrics, the settings on state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request

from shared.blocking import detected
from shared.config import Settings
from shared.health import Check, InfoProvider, health_router, no_info
from shared.logs import configure_logging
from shared.metrics import instrument
from shared.runtime import Resources, version

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def resources_of(request: Request) -> Resources:
    """The lifespan's open resources, for dependencies and probes."""
    resources: Resources = request.app.state.resources
    return resources


def default_checks(request: Request) -> Mapping[str, Check]:
    return resources_of(request).checks()


def service_app(
    name: str,
    settings: Settings,
    lifespan: Lifespan,
    checks: Callable[[Request], Mapping[str, Check]] = default_checks,
    info: InfoProvider = no_info,
    **fastapi_kwargs: object,
) -> FastAPI:
    configure_logging(settings, name)
    app = FastAPI(
        title=f"vtx {name}",
        version=version(),
        lifespan=detected(lifespan) if settings.detect_blocking else lifespan,
        **fastapi_kwargs,  # type: ignore[arg-type]
    )
    app.state.settings = settings
    app.include_router(health_router(name, version(), checks, info))
    instrument(app)
    return app
