"""The three probes every service serves, with their Kubernetes meaning.

`/health/live` says only that the event loop turns (a restart would not help a
missing database); `/health/ready` says the service can do its work now, naming
whatever part cannot; `/health` is a short summary for people.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[None]]
ChecksProvider = Callable[[Request], Mapping[str, Check]]
InfoProvider = Callable[[Request], Mapping[str, Any]]

CHECK_TIMEOUT_S = 3.0


async def _run_check(check: Check) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
    except Exception as exc:  # a probe reports every failure, it never raises
        detail = str(exc) or type(exc).__name__
        return {"status": "down", "error": detail[:300], "latency_ms": _ms(began)}
    return {"status": "ok", "latency_ms": _ms(began)}


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 2)


async def run_checks(checks: Mapping[str, Check]) -> dict[str, dict[str, Any]]:
    names = list(checks)
    results = await asyncio.gather(*(_run_check(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))


def no_info(_request: Request) -> Mapping[str, Any]:
    return {}


def health_router(
    service: str, version: str, checks: ChecksProvider, info: InfoProvider = no_info
) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])
    started = time.monotonic()

    @router.get("/live", summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/ready", summary="Readiness: every dependency answers")
    async def ready(request: Request) -> JSONResponse:
        results = await run_checks(checks(request))
        failing = sorted(name for name, r in results.items() if r["status"] != "ok")
        body = {
            "status": "not_ready" if failing else "ready",
            "service": service,
            "failing": failing,
            "checks": results,
        }
        return JSONResponse(body, status_code=503 if failing else 200)

    @router.get("", summary="Summary of this service's health")
    async def summary(request: Request) -> dict[str, Any]:
        results = await run_checks(checks(request))
        ok = all(r["status"] == "ok" for r in results.values())
        return {
            "status": "ok" if ok else "down",
            "service": service,
            "version": version,
            "uptime_s": round(time.monotonic() - started, 1),
            "checks": {name: r["status"] for name, r in results.items()},
            "info": dict(info(request)),
        }

    return router
