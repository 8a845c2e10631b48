"""Gauges the health service alone sets, from what it reads of Redis, the services and
the disk (one exporter for each fact, so no other service reports them as zero)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

QUEUE_DEPTH = Gauge(
    "vtx_queue_depth",
    "Tasks waiting or running in each queue (read from Redis by the health service).",
    ["queue"],
    multiprocess_mode="max",
)
WORKERS_ALIVE = Gauge(
    "vtx_workers_alive",
    "Worker processes seen heartbeating, by service (read by the health service).",
    ["service"],
    multiprocess_mode="max",
)
DEPENDENCY_UP = Gauge(
    "vtx_dependency_up",
    "1 when a dependency or service answers the health service, else 0.",
    ["name"],
    multiprocess_mode="max",
)
DATA_DIR_FREE = Gauge(
    "vtx_data_dir_free_bytes",
    "Free space on the data folder's file system.",
    multiprocess_mode="min",
)
DATA_DIR_SIZE = Gauge(
    "vtx_data_dir_size_bytes",
    "Size of the data folder's file system.",
    multiprocess_mode="max",
)


class ServiceRestarts(Collector):
    """`vtx_service_restarts_total{service}`: restarts `vtx up` made of each service.

    The count is kept by the supervisor (in Redis), not in this process, so this
    exports the last count the aggregator read rather than counting itself; it starts
    again from 0 with a new `vtx up`, as a counter does after a restart."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def update(self, counts: Mapping[str, int]) -> None:
        self._counts.update(counts)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "vtx_service_restarts",
            "Restarts of each service by its supervisor (`vtx up`), read from Redis.",
            labels=["service"],
        )
        for service, count in sorted(self._counts.items()):
            family.add_metric([service], count)
        yield family


SERVICE_RESTARTS = ServiceRestarts()
REGISTRY.register(SERVICE_RESTARTS)
