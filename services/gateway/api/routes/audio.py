"""OpenAI-compatible audio API: code written for `/v1/audio/transcriptions` works here.

The file goes through the same pipeline as any job (split, chunks in parallel,
merged), and the request waits for the transcript. The job stays listed under
/v1/jobs, owned by the caller's key. Refusals come in OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel

from services.gateway.auth import CallerDep
from services.gateway.deps import ResourcesDep, SettingsDep
from services.gateway.errors import OpenAIRoute, openai_errors
from services.gateway.intake import Source, accept, check_quota
from services.gateway.openai_format import ResponseFormat, respond
from services.gateway.options import JobOptions, parse_options
from services.gateway.uploads import FILE_FIELD, UploadError, receive_upload
from services.gateway.views import transcript_doc
from shared.models import Job, JobStatus, Transcript
from shared.runtime import Resources
from shared.speech_models import OPENAI_ALIAS, allowed
from shared.transcript import TranscriptDoc

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)

POLL_S = 0.25
GRANULARITIES = "timestamp_granularities[]"
TRANSCRIBE_FIELDS = frozenset({"model", "language", "prompt", "temperature"})
TRANSLATE_FIELDS = frozenset({"model", "prompt", "temperature"})


def _body(translate: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        FILE_FIELD: {"type": "string", "format": "binary"},
        "model": {"type": "string", "description": "whisper-1 (the default) or GET /v1/models"},
        "prompt": {"type": "string", "maxLength": 2000},
        "response_format": {"type": "string", "enum": [f.value for f in ResponseFormat]},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    }
    if not translate:
        properties["language"] = {"type": "string", "description": "ISO 639-1, e.g. en"}
        properties[GRANULARITIES] = {
            "type": "array",
            "items": {"type": "string", "enum": ["word", "segment"]},
        }
    schema = {"type": "object", "required": [FILE_FIELD, "model"], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


RESULT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The transcript in the response_format asked for.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    },
    **openai_errors(400, 401, 413, 415, 422, 429, 500, 504),
}


@router.post(
    "/audio/transcriptions",
    summary="OpenAI-compatible transcription (waits for the transcript)",
    openapi_extra=_body(translate=False),
    response_class=Response,
    responses=RESULT,
)
async def create_transcription(
    request: Request, res: ResourcesDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    return await _run(request, res, settings, caller, translate=False)


@router.post(
    "/audio/translations",
    summary="OpenAI-compatible translation to English (waits for the transcript)",
    openapi_extra=_body(translate=True),
    response_class=Response,
    responses=RESULT,
)
async def create_translation(
    request: Request, res: ResourcesDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    return await _run(request, res, settings, caller, translate=True)


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
    request: Request, res: Resources, settings: SettingsDep, caller: CallerDep, translate: bool
) -> Response:
    await check_quota(res, caller)
    try:
        upload = await receive_upload(request, settings.uploads_dir, settings.max_upload_bytes)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.message) from exc
    try:
        fields = TRANSLATE_FIELDS if translate else TRANSCRIBE_FIELDS
        options = parse_options(upload.fields, fields)
        options = options.model_copy(update={"task": "translate" if translate else "transcribe"})
        fmt, granularities = _format(upload.fields, upload.lists)
        source = Source(upload.path, upload.size, upload.filename)
        job = await accept(request, res, caller, source, options)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.message) from exc
    finally:
        upload.discard()
    doc = await _wait(res, job.id, settings.openai_wait_s)
    return respond(doc, fmt, options.task, granularities)


def _format(fields: dict[str, str], lists: dict[str, list[str]]) -> tuple[ResponseFormat, set[str]]:
    try:
        fmt = ResponseFormat(fields.get("response_format") or "json")
    except ValueError as exc:
        choices = ", ".join(f.value for f in ResponseFormat)
        raise UploadError(422, f"response_format must be one of {choices}.") from exc
    granularities = set(lists.get(GRANULARITIES, [])) | set(
        lists.get("timestamp_granularities", [])
    )
    unknown = granularities - {"word", "segment"}
    if unknown:
        raise UploadError(422, f"timestamp_granularities[] takes word or segment, not {unknown}.")
    return fmt, granularities


async def _wait(res: Resources, job_id: str, wait_s: float) -> TranscriptDoc:
    """Poll the job's row until it ends; the transcript, or the failure as an error."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        async with res.sessions() as session:
            job = await session.get(Job, job_id)
            if job is None:
                raise HTTPException(404, f"The job {job_id} was deleted while it ran.")
            if job.status == JobStatus.failed:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, job.error or "The job failed.")
            if job.status == JobStatus.completed:
                transcript = await session.get(Transcript, job_id)
                if transcript is not None:
                    return transcript_doc(transcript)
        await asyncio.sleep(POLL_S)
    raise HTTPException(
        status.HTTP_504_GATEWAY_TIMEOUT,
        f"The transcript was not ready after {wait_s:g} s; it goes on as job {job_id} "
        f"(GET /v1/jobs/{job_id}).",
    )


__all__ = ["JobOptions", "router"]
