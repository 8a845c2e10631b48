"""One document for the whole suite: every service, every dependency, the queues, the
workers and the machine, with an overall verdict an operator can page on.

The verdict: `down` when nothing can be accepted (the gateway, the database, Redis or
the object store is not there); `degraded` when work is accepted but waits (a
splitter, transcriber or speakers service is down, or a queue holds work that no
live worker serves); `ok` otherwise.

Under `vtx up`, a service that is down while its supervisor restarts it shows as
`restarting`, with its count of restarts (`vtx:supervisor:<service>` in Redis).

The callbacks queue is shown and exported but judges nothing: it holds the retries
deferred for receivers that are down, by design, and the gateway that serves it is
judged itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import anyio
import httpx

from services.health.metrics import (
    DATA_DIR_FREE,
    DATA_DIR_SIZE,
    DEPENDENCY_UP,
    QUEUE_DEPTH,
    SERVICE_RESTARTS,
    WORKERS_ALIVE,
)
from services.health.system import system_facts
from shared.health import run_checks
from shared.pipeline.contracts import CALLBACK_QUEUE, QUEUES
from shared.runtime import Resources, version
from shared.worker import WORKERS_KEY

REQUIRED = frozenset({"gateway", "database", "redis", "store"})
QUEUE_SERVICE = {"split": "splitter", "transcribe": "transcriber", "speakers": "speakers"}
SHOWN_QUEUES = {**QUEUES, "callbacks": CALLBACK_QUEUE}
# `vtx up` writes one hash per service here (services/cli/up.py): state, restarts,
# last_exit, pid, at. Absent where no supervisor runs (Kubernetes restarts pods itself).
SUPERVISOR_KEY = "vtx:supervisor:"
COMING_BACK = frozenset({"restarting", "starting"})


async def service_status(client: httpx.AsyncClient, name: str, url: str) -> dict[str, Any]:
    """One service's state from its own two health routes; an answer that is not its
    JSON (a proxy's HTML error page, a crash half-way) marks it down with the reason."""
    began = time.perf_counter()
    try:
        ready, summary = await asyncio.gather(
            client.get(f"{url}/health/ready"), client.get(f"{url}/health")
        )
    except httpx.HTTPError as exc:
        return {"status": "down", "url": url, "error": str(exc) or type(exc).__name__}
    latency = round((time.perf_counter() - began) * 1000, 2)
    try:
        body = _json_object(summary) if summary.status_code == 200 else {}
        failing = _json_object(ready).get("failing", []) if ready.content else []
    except ValueError as exc:
        return {"status": "down", "url": url, "latency_ms": latency, "error": str(exc)}
    result: dict[str, Any] = {
        "status": "ok" if ready.status_code == 200 else "down",
        "url": url,
        "latency_ms": latency,
        "version": body.get("version"),
        "info": body.get("info", {}),
    }
    if ready.status_code != 200:
        result["failing"] = failing
    return result


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or ValueError saying what came instead."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = response.headers.get("content-type", "no content type")
        raise ValueError(
            f"{response.request.url.path} answered {response.status_code} with {kind}, "
            "not a JSON object"
        )
    return body


async def queue_depths(res: Resources) -> dict[str, int]:
    depths = await asyncio.gather(*(res.queue.zcard(key) for key in SHOWN_QUEUES.values()))
    return dict(zip(SHOWN_QUEUES, (int(d) for d in depths), strict=True))


async def live_workers(res: Resources) -> list[dict[str, Any]]:
    keys = [key async for key in res.queue.scan_iter(match=f"{WORKERS_KEY}*", count=200)]
    values = await res.queue.mget(keys) if keys else []
    return [json.loads(v) for v in values if v]


async def supervision(res: Resources) -> dict[str, dict[str, Any]]:
    """What the supervisor says of each service it runs: state, restarts, last exit."""
    keys = [key async for key in res.queue.scan_iter(match=f"{SUPERVISOR_KEY}*", count=100)]
    pipe = res.queue.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    records: list[dict[bytes, bytes]] = await pipe.execute() if keys else []
    found: dict[str, dict[str, Any]] = {}
    for key, record in zip(keys, records, strict=True):
        fields = {k.decode(): v.decode() for k, v in record.items()}
        if not fields:
            continue
        last_exit = fields.get("last_exit", "")
        found[key.decode().removeprefix(SUPERVISOR_KEY)] = {
            "state": fields.get("state", "unknown"),
            "restarts": int(fields.get("restarts") or 0),
            "last_exit": int(last_exit) if last_exit.lstrip("-").isdigit() else None,
        }
    return found


def with_supervision(
    services: dict[str, dict[str, Any]], supervised: dict[str, dict[str, Any]]
) -> None:
    """A service down while its supervisor brings it back is `restarting`, not just down."""
    for name, part in services.items():
        record = supervised.get(name)
        if record is None:
            continue
        part["restarts"] = record["restarts"]
        if part["status"] != "ok" and record["state"] in COMING_BACK:
            part["status"] = "restarting"
            part["last_exit"] = record["last_exit"]


def verdict(
    services: dict[str, dict[str, Any]],
    dependencies: dict[str, dict[str, Any]],
    queues: dict[str, int],
    workers: list[dict[str, Any]],
) -> str:
    states = {**services, **dependencies}
    if any(states.get(name, {}).get("status") != "ok" for name in REQUIRED & states.keys()):
        return "down"
    if any(part["status"] != "ok" for part in states.values()):
        return "degraded"
    serving = {w["service"] for w in workers}
    waiting = [queue for queue, depth in queues.items() if depth and queue in QUEUE_SERVICE]
    if any(QUEUE_SERVICE[queue] not in serving for queue in waiting):
        return "degraded"
    return "ok"


async def detailed(res: Resources, client: httpx.AsyncClient) -> dict[str, Any]:
    urls = res.settings.service_urls()
    names = list(urls)
    statuses, dependencies = await asyncio.gather(
        asyncio.gather(*(service_status(client, n, urls[n]) for n in names)),
        run_checks(res.checks()),
    )
    services = dict(zip(names, statuses, strict=True))
    queues: dict[str, int] = {}
    workers: list[dict[str, Any]] = []
    supervised: dict[str, dict[str, Any]] = {}
    if dependencies["redis"]["status"] == "ok":
        queues, workers, supervised = await asyncio.gather(
            queue_depths(res), live_workers(res), supervision(res)
        )
    with_supervision(services, supervised)
    document = {
        "status": verdict(services, dependencies, queues, workers),
        "version": version(),
        "services": services,
        "dependencies": dependencies,
        "queues": queues,
        "workers": workers,
        "supervisor": supervised,
        "system": await anyio.to_thread.run_sync(system_facts, res.settings.data_dir),
        "model": services.get("transcriber", {}).get("info", {}),
    }
    _export(document)
    return document


def _export(document: dict[str, Any]) -> None:
    """The same facts as gauges, for Prometheus and the alert rules."""
    for name, part in {**document["services"], **document["dependencies"]}.items():
        DEPENDENCY_UP.labels(name).set(1 if part["status"] == "ok" else 0)
    for queue, depth in document["queues"].items():
        QUEUE_DEPTH.labels(queue).set(depth)
    for service in QUEUE_SERVICE.values():
        alive = sum(1 for w in document["workers"] if w["service"] == service)
        WORKERS_ALIVE.labels(service).set(alive)
    SERVICE_RESTARTS.update({name: r["restarts"] for name, r in document["supervisor"].items()})
    disk = document["system"]["disk"]
    DATA_DIR_FREE.set(disk["free_bytes"])
    DATA_DIR_SIZE.set(disk["total_bytes"])
