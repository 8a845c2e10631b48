"""Queue contracts: queue names, task names, typed payloads and deterministic job ids.

arq delivers at least once, so every id here is derived from the work itself, and a
split's or a chunk's also from how many times it has been started (its `attempts` in
the database): enqueueing the same work twice while it is pending is a no-op, and a
split or chunk whose worker died gets a fresh id, so it need not wait for arq's
in-progress key to expire. A merge has one id for good: it completes a job only once.
"""

from __future__ import annotations

from pydantic import BaseModel

SPLIT_QUEUE = "vtx:queue:split"
TRANSCRIBE_QUEUE = "vtx:queue:transcribe"
SPEAKERS_QUEUE = "vtx:queue:speakers"
CALLBACK_QUEUE = "vtx:queue:callbacks"  # served by the gateway, which has egress
QUEUES = {"split": SPLIT_QUEUE, "transcribe": TRANSCRIBE_QUEUE, "speakers": SPEAKERS_QUEUE}

SPLIT_TASK = "split_job"
TRANSCRIBE_TASK = "transcribe_chunk"
MERGE_TASK = "merge_job"
DIARIZE_TASK = "diarize_job"
CALLBACK_TASK = "deliver_callback"


class SplitPayload(BaseModel):
    job_id: str
    request_id: str | None = None


class TranscribePayload(BaseModel):
    job_id: str
    index: int
    request_id: str | None = None


class DiarizePayload(BaseModel):
    job_id: str
    request_id: str | None = None


class MergePayload(BaseModel):
    job_id: str
    request_id: str | None = None


class CallbackPayload(BaseModel):
    job_id: str
    attempt: int  # deliveries already made; this task makes attempt + 1
    queue: str  # the queue it runs on, where its retry goes too


def split_job_id(job_id: str, attempts: int) -> str:
    return f"split:{job_id}:{attempts}"


def transcribe_job_id(job_id: str, index: int, attempts: int) -> str:
    return f"transcribe:{job_id}:{index}:{attempts}"


def diarize_job_id(job_id: str, attempts: int) -> str:
    return f"diarize:{job_id}:{attempts}"


def merge_job_id(job_id: str) -> str:
    return f"merge:{job_id}"


def log_context(arq_id: str) -> dict[str, str | int]:
    """The job (and chunk) an arq id is about, for log lines arq writes itself."""
    kind, _, rest = arq_id.partition(":")
    parts = rest.split(":")
    if not parts[0]:
        return {}
    context: dict[str, str | int] = {"job_id": parts[0]}
    if kind == "transcribe" and len(parts) > 1 and parts[1].isdigit():
        context["chunk"] = int(parts[1])
    return context


def callback_job_id(job_id: str, attempt: int) -> str:
    return f"callback:{job_id}:{attempt}"
