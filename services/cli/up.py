"""`vtx up`: the whole suite as child processes of one command, stopped together."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from types import FrameType

import httpx
from rich.console import Console
from rich.table import Table

from services.cli.redis import EmbeddedRedis
from shared import apikeys, db, migrate
from shared.config import SERVICES, Service, Settings

console = Console(stderr=True)
READY_TIMEOUT_S = 180.0
STOP_GRACE_S = 15.0

Children = dict[Service, subprocess.Popen[bytes]]


class Stop(Exception):
    """SIGTERM, turned into an exception so `vtx up` unwinds as on Ctrl-C."""


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise Stop


def run_suite(settings: Settings) -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    overrides: dict[str, str] = {}
    if "log_format" not in settings.model_fields_set and sys.stderr.isatty():
        overrides["VTX_LOG_FORMAT"] = "console"  # a person is watching; machines get JSON
    with ExitStack() as stack:
        try:
            if "redis_url" not in settings.model_fields_set:
                embedded = EmbeddedRedis(settings.data_dir, settings.embedded_redis_port)
                embedded.start()
                stack.callback(embedded.stop)
                overrides["VTX_REDIS_URL"] = embedded.url
            # The embedded database is this command's own: bring it up to date first.
            asyncio.run(migrate.upgrade_database(settings))
            children = _start_services(overrides)
            stack.callback(_stop_all, children)
            _wait_ready(settings, children)
            _announce(settings)
            return _watch(children)
        except (KeyboardInterrupt, Stop):
            console.print("stopping vtx ...")
            return 0
        except RuntimeError as exc:
            console.print(f"[red]vtx up failed:[/red] {exc}")
            return 1


def _base(settings: Settings, service: Service) -> str:
    return f"http://{settings.host}:{settings.port(service)}"


def _start_services(overrides: dict[str, str]) -> Children:
    env = {**os.environ, **overrides}
    return {
        name: subprocess.Popen([sys.executable, "-m", "services.cli", name], env=env)
        for name in SERVICES
    }


def _wait_ready(settings: Settings, children: Children) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = set(children)
    with console.status("starting gateway, splitter, transcriber, health ..."):
        while pending:
            for name in sorted(pending):
                if children[name].poll() is not None:
                    raise RuntimeError(f"the {name} exited while starting; see its log above")
                url = f"{_base(settings, name)}/health/ready"
                try:
                    if httpx.get(url, timeout=1.0).status_code == 200:
                        pending.discard(name)
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {READY_TIMEOUT_S:g} s: {sorted(pending)}")
            time.sleep(0.2)


def _announce(settings: Settings) -> None:
    table = Table(title="vtx is up", show_header=True)
    table.add_column("service")
    table.add_column("address")
    for name in SERVICES:
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


def _watch(children: Children) -> int:
    while True:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                console.print(f"[red]the {name} exited with code {code}; stopping the suite[/red]")
                return 1
        time.sleep(0.5)


def _stop_all(children: Children) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
