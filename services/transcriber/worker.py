"""The transcriber's arq worker: which tasks, which queue, how many chunks at once."""

from __future__ import annotations

from typing import Any

from arq.worker import Worker

from services.transcriber.tasks import merge_job, transcribe_chunk
from shared.pipeline.contracts import TRANSCRIBE_QUEUE
from shared.runtime import Resources
from shared.worker import create_worker


def transcriber_worker(res: Resources, ctx: dict[str, Any]) -> Worker:
    """ctx carries `engine`, `executor`, `gatherer` and `layout` besides the resources."""
    # As many chunks as fill the batches, and one extra slot so a merge never waits
    # behind a full set of chunks. Callbacks are not delivered here: the gateway does
    # that, on its own queue.
    return create_worker(
        res.settings,
        [transcribe_chunk, merge_job],
        TRANSCRIBE_QUEUE,
        ctx,
        max_jobs=ctx["layout"].chunks_held + 1,
    )
