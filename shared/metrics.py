"""Prometheus metrics: HTTP metrics from the instrumentator, plus the suite's own.

Names follow Prometheus conventions (base units, `_total` counters) and carry no job
or user ids as labels. Gauges say how to combine values when a service runs several
processes with `PROMETHEUS_MULTIPROC_DIR` set (counters and histograms add up). The
gauges only the health service sets live beside it (services/health/metrics.py), so
no other service exports them at a false zero.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from prometheus_fastapi_instrumentator import Instrumentator

JOBS = Counter("vtx_jobs", "Jobs that reached an end, by outcome.", ["outcome"])
AUDIO_SECONDS = Counter("vtx_audio_seconds", "Seconds of audio transcribed.")
CHUNK_RETRIES = Counter(
    "vtx_chunk_retries", "Chunks started again after an error or a lost worker."
)
STAGE_SECONDS = Histogram(
    "vtx_stage_duration_seconds",
    "Time spent in each stage of a job: upload, split, transcribe (per chunk), speakers "
    "(one diarization of the whole file), merge, end_to_end (upload to completed transcript).",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
REALTIME_FACTOR = Histogram(
    "vtx_realtime_factor",
    "Audio seconds per wall-clock second of transcription, per chunk.",
    buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320),
)
WORKERS_BUSY = Gauge(
    "vtx_workers_busy",
    "Tasks running now in this service's workers.",
    ["service"],
    multiprocess_mode="livesum",
)
OPENAI_WAITING = Gauge(
    "vtx_openai_waiting",
    "Requests to /v1/audio/* waiting now for their transcript (a client that leaves "
    "stops its wait; its job goes on).",
    multiprocess_mode="livesum",
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "vtx_rate_limit_unavailable",
    "Requests let through unlimited because Redis, which counts them, could not be reached.",
)
WORKER_HEARTBEAT_FAILURES = Counter(
    "vtx_worker_heartbeat_failures",
    "Worker heartbeats that could not be written to Redis; while they fail, the health "
    "service counts the worker as gone.",
    ["service"],
)


def instrument(app: FastAPI) -> None:
    """Count and time every request (by route template, not raw path) and serve /metrics."""
    # `_created` series double the output and nothing reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    Instrumentator(
        excluded_handlers=["/metrics", "/health/live"],
        should_group_status_codes=False,
    ).instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
