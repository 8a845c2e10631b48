"""The speakers service's arq worker: a few diarizations at once, each with a long timeout."""

from __future__ import annotations

from typing import Any

from arq.worker import Worker

from services.speakers.tasks import diarize_job
from shared.pipeline.contracts import SPEAKERS_QUEUE
from shared.runtime import Resources
from shared.worker import create_worker


def speakers_worker(res: Resources, ctx: dict[str, Any]) -> Worker:
    """ctx carries `diarizer` and `executor` besides the resources.

    One diarization uses every core, so `speakers_concurrency` (default 1) bounds them
    per process; a diarization of a long file takes a good part of its length, hence
    `speakers_timeout_s`, not the chunks' `job_timeout_s` (the reconciler knows both)."""
    settings = res.settings
    return create_worker(
        settings,
        [diarize_job],
        SPEAKERS_QUEUE,
        ctx,
        max_jobs=settings.speakers_concurrency,
        job_timeout_s=settings.speakers_timeout_s,
    )
