"""The splitter's arq worker: one split at a time per core, decoding off the event loop."""

from __future__ import annotations

from typing import Any

from arq.worker import Worker

from services.splitter.tasks import split_job
from shared.pipeline.contracts import SPLIT_QUEUE
from shared.runtime import Resources
from shared.worker import create_worker


def splitter_worker(res: Resources, ctx: dict[str, Any], cores: int) -> Worker:
    """One split at a time per core (`cores` is read once, off the loop, by the caller)."""
    return create_worker(res.settings, [split_job], SPLIT_QUEUE, ctx, max_jobs=cores)
