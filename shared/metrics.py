"""Prometheus metrics: HTTP metrics from the instrumentator, plus the suite's own."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from prometheus_fastapi_instrumentator import Instrumentator

JOBS = Counter("vtx_jobs", "Jobs that reached an end, by outcome.", ["outcome"])
AUDIO_SECONDS = Counter("vtx_audio_seconds", "Seconds of audio transcribed.")
STAGE_SECONDS = Histogram(
    "vtx_stage_duration_seconds",
    "Time spent in each stage of a job.",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
REALTIME_FACTOR = Histogram(
    "vtx_realtime_factor",
    "Audio seconds per wall-clock second of transcription, per chunk.",
    buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320),
)


def instrument(app: FastAPI) -> None:
    """Count and time every request (by route template, not raw path) and serve /metrics."""
    Instrumentator(
        excluded_handlers=["/metrics", "/health/live"],
        should_group_status_codes=False,
    ).instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
