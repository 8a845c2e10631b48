"""The transcriber's arq worker: which tasks, which queue, how many chunks at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from arq.worker import Worker

from services.transcriber.engine import Engine
from services.transcriber.jobs import merge_job, transcribe_chunk
from shared.jobs import TRANSCRIBE_QUEUE
from shared.runtime import Resources
from shared.worker import create_worker


def transcriber_worker(res: Resources, engine: Engine, executor: ThreadPoolExecutor) -> Worker:
    # One extra slot so a merge never waits behind a full set of chunks.
    return create_worker(
        res.settings,
        [transcribe_chunk, merge_job],
        TRANSCRIBE_QUEUE,
        {"resources": res, "engine": engine, "executor": executor},
        max_jobs=res.settings.workers + 1,
    )
