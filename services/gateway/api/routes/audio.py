"""OpenAI-compatible audio API: code written for `/v1/audio/transcriptions` works here.

The file goes through the same pipeline as any job (split, chunks in parallel,
merged), and the request waits for the transcript. The job stays listed under
/v1/jobs, owned by the caller's key. Refusals come in OpenAI's error shape.

The forms take the fields of OpenAI's documented API: those vtx uses, and the newer
ones it has no use for (streaming, server-side chunking, logprobs, known speakers),
which are accepted and ignored, within the same limits; any other name is refused.
A client that hangs up while it waits ends its wait; its job goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from services.gateway.auth import CallerDep
from services.gateway.deps import ResourcesDep, SettingsDep
from services.gateway.errors import openai_errors
from services.gateway.intake import Source, accept
from services.gateway.openai_format import ResponseFormat, respond
from services.gateway.options import Form, parse_options, parse_subtitles, subtitle_fields
from services.gateway.problems import InvalidField, JobFailed, NotFound, TimedOut
from services.gateway.quotas import check_before_upload
from services.gateway.uploads import FormLimits, receive_upload
from services.gateway.views import transcript_doc
from services.gateway.waiting import EndWaiter, WaiterDep
from shared.metrics import OPENAI_WAITING
from shared.models import JobStatus, Transcript
from shared.runtime import Resources
from shared.speech_models import OPENAI_ALIAS, allowed
from shared.transcript import TranscriptDoc

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])

CLIENT_GONE = 499  # nginx's "client closed request": nobody reads it, the metrics do
RESPONSE_FORMAT = "response_format"
GRANULARITIES = "timestamp_granularities[]"
GRANULARITY_CHOICES = ("word", "segment")

_RESPONSE_FORMAT_FIELD = {
    RESPONSE_FORMAT: {
        "type": "string",
        "enum": [f.value for f in ResponseFormat],
        "default": ResponseFormat.json.value,
    }
}
SPEAKER_OPTIONS = ("speakers", "min_speakers", "max_speakers")
_GRANULARITIES = {"type": "array", "items": {"type": "string", "enum": list(GRANULARITY_CHOICES)}}

TRANSCRIBE_FORM = Form(
    options=(
        "model",
        "language",
        "prompt",
        "hotwords",
        "temperature",
        "vad",
        *SPEAKER_OPTIONS,
    ),
    own={
        **_RESPONSE_FORMAT_FIELD,
        **subtitle_fields(),
        GRANULARITIES: {**_GRANULARITIES, "description": "With verbose_json: word, segment"},
        "timestamp_granularities": {**_GRANULARITIES, "description": "As the one with []"},
    },
    ignored=(
        "stream",
        "include[]",
        "chunking_strategy",
        "chunking_strategy[type]",
        "chunking_strategy[prefix_padding_ms]",
        "chunking_strategy[silence_duration_ms]",
        "chunking_strategy[threshold]",
        "known_speaker_names[]",
        "known_speaker_references[]",
        "keywords[]",
        "languages[]",
    ),
    required=("model",),
    file_description="The audio (or video) to transcribe",
)
TRANSLATE_FORM = Form(
    options=("model", "prompt", "hotwords", "temperature", "vad", *SPEAKER_OPTIONS),
    own={**_RESPONSE_FORMAT_FIELD, **subtitle_fields()},
    required=("model",),
    file_description="The audio (or video) to translate into English",
)


RESULT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The transcript in the response_format asked for.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    },
    **openai_errors(400, 401, 404, 413, 415, 422, 429, 503, 504, 507),
}


@router.post(
    "/audio/transcriptions",
    summary="OpenAI-compatible transcription (waits for the transcript)",
    openapi_extra=TRANSCRIBE_FORM.openapi(),
    response_class=Response,
    responses=RESULT,
)
async def create_transcription(
    request: Request, res: ResourcesDep, settings: SettingsDep, caller: CallerDep, waiter: WaiterDep
) -> Response:
    return await _run(request, res, settings, caller, waiter, translate=False)


@router.post(
    "/audio/translations",
    summary="OpenAI-compatible translation to English (waits for the transcript)",
    openapi_extra=TRANSLATE_FORM.openapi(),
    response_class=Response,
    responses=RESULT,
)
async def create_translation(
    request: Request, res: ResourcesDep, settings: SettingsDep, caller: CallerDep, waiter: WaiterDep
) -> Response:
    return await _run(request, res, settings, caller, waiter, translate=True)


class ModelOut(BaseModel):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "vtx"


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelOut]


@router.get(
    "/models",
    response_model=ModelList,
    summary="The speech models a request may choose",
    responses=openai_errors(401, 429),
)
async def list_models(settings: SettingsDep, _: CallerDep) -> ModelList:
    names = [OPENAI_ALIAS, *allowed(settings)]
    return ModelList(data=[ModelOut(id=name) for name in names])


async def _run(
    request: Request,
    res: Resources,
    settings: SettingsDep,
    caller: CallerDep,
    waiter: EndWaiter,
    translate: bool,
) -> Response:
    await check_before_upload(res, caller)
    form = TRANSLATE_FORM if translate else TRANSCRIBE_FORM
    upload = await receive_upload(
        request, settings.uploads_dir, FormLimits.of(settings), form.names
    )
    try:
        options = parse_options(upload.fields, form, settings.max_speakers)
        options = options.model_copy(update={"task": "translate" if translate else "transcribe"})
        fmt, granularities = _format(upload.fields, upload.lists)
        rules = parse_subtitles(upload.fields)
        source = Source(upload.path, upload.size, upload.filename)
        job = await accept(request, res, caller, source, options)
    finally:
        await upload.discard()
    doc = await _wait_while_connected(request, res, waiter, job.id, settings.openai_wait_s)
    if doc is None:
        return Response(status_code=CLIENT_GONE)
    return respond(doc, fmt, options.task, granularities, rules)


def _format(fields: dict[str, str], lists: dict[str, list[str]]) -> tuple[ResponseFormat, set[str]]:
    try:
        fmt = ResponseFormat(fields.get(RESPONSE_FORMAT) or "json")
    except ValueError as exc:
        choices = ", ".join(f.value for f in ResponseFormat)
        raise InvalidField(
            f"response_format must be one of {choices}.", param=RESPONSE_FORMAT
        ) from exc
    granularities = set(lists.get(GRANULARITIES, [])) | set(
        lists.get("timestamp_granularities", [])
    )
    unknown = granularities - set(GRANULARITY_CHOICES)
    if unknown:
        shown = ", ".join(sorted(repr(u[:32]) for u in unknown))
        raise InvalidField(
            f"timestamp_granularities[] takes word or segment, not {shown}.", param=GRANULARITIES
        )
    return fmt, granularities


async def _wait_while_connected(
    request: Request, res: Resources, waiter: EndWaiter, job_id: str, wait_s: float
) -> TranscriptDoc | None:
    """The transcript, or None as soon as the client has hung up: nobody would read it,
    so the request's task ends here (the job goes on, listed under /v1/jobs)."""
    waiting = asyncio.ensure_future(_wait(res, waiter, job_id, wait_s))
    leaving = asyncio.ensure_future(_disconnected(request))
    OPENAI_WAITING.inc()
    try:
        await asyncio.wait({waiting, leaving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        OPENAI_WAITING.dec()
        for task in (waiting, leaving):
            task.cancel()
        await asyncio.gather(waiting, leaving, return_exceptions=True)
    if waiting.done() and not waiting.cancelled():
        return waiting.result()
    log.info("openai.client_gone", job_id=job_id)
    return None


async def _disconnected(request: Request) -> None:
    """Return once the client hangs up (its body has been read: only that can come)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _wait(res: Resources, waiter: EndWaiter, job_id: str, wait_s: float) -> TranscriptDoc:
    """Wait for the job to end (services.gateway.waiting reads it for every waiting
    request at once); the transcript, or the failure as an error."""
    try:
        async with asyncio.timeout(wait_s):
            ended = await waiter.ended(job_id)
    except TimeoutError:
        raise TimedOut(
            f"The transcript was not ready after {wait_s:g} s; it goes on as job {job_id} "
            f"(GET /v1/jobs/{job_id}).",
        ) from None
    if ended.status == JobStatus.failed:
        raise JobFailed(ended.error or "The job failed.")
    transcript = None
    if ended.status == JobStatus.completed:  # its transcript was written with that status
        async with res.sessions() as session:
            transcript = await session.get(Transcript, job_id)
    if transcript is None:
        raise NotFound(f"The job {job_id} was deleted while it ran.")
    return transcript_doc(transcript)
