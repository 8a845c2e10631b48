"""Gauges the health service alone sets, from what it reads of Redis, the services and
the disk (one exporter for each fact, so no other service reports them as zero)."""

from __future__ import annotations

from prometheus_client import Gauge

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
