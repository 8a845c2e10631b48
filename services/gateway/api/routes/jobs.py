"""`/v1/jobs`: submit media, follow its progress, fetch or delete its transcript."""

from __future__ import annotations

import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy import delete, func
from sqlmodel import col, select

from services.gateway.auth import CallerDep
from services.gateway.deps import ResourcesDep, SessionDep, SettingsDep
from services.gateway.errors import AUTH_ERRORS, NO_SPEAKERS, STORAGE_FULL
from services.gateway.intake import Source, accept, source_of
from services.gateway.lookups import OwnedJob, job_or_404
from services.gateway.numbers import READ_INTEGER
from services.gateway.options import JOB_FORM, SubtitleOptions, parse_options
from services.gateway.problems import NotReady
from services.gateway.quotas import check_before_upload
from services.gateway.schemas import ErrorOut, JobOut, JobPage, SpeakerNamesIn
from services.gateway.speakers import (
    JSON_TYPES,
    merged_names,
    parse_names,
    read_json_body,
    unknown_labels,
)
from services.gateway.uploads import FormLimits, receive_upload
from services.gateway.views import (
    Done,
    deliveries_by_job,
    done_by_job,
    job_out,
    transcript_doc,
)
from shared.metrics import JOBS, STAGE_SECONDS
from shared.models import CallbackDelivery, Chunk, Diarization, Job, JobStatus, Transcript
from shared.runtime import Resources
from shared.speakers import name_speakers
from shared.store import chunk_prefix, media_key
from shared.transcript import MEDIA_TYPES, Format, render

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=AUTH_ERRORS)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No job with this id."}
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    summary="Submit an audio or video file for transcription",
    openapi_extra=JOB_FORM.openapi(),
    responses={
        400: {
            "model": ErrorOut,
            "description": "Empty file, unreadable body, or translation on an English-only model.",
        },
        413: {
            "model": ErrorOut,
            "description": "Larger than VTX_MAX_UPLOAD_MB, longer than VTX_MAX_DURATION_S or "
            "the key's whole audio budget, or past the key's storage quota.",
        },
        415: {"model": ErrorOut, "description": "Not audio or video in a supported format."},
        422: {
            "model": ErrorOut,
            "description": "Missing file, a field this form does not take, more fields than "
            "VTX_MAX_FORM_FIELDS or VTX_MAX_FORM_BYTES allow, invalid field, unknown model, "
            "or a URL that may not or could not be fetched.",
        },
        **NO_SPEAKERS,
        **STORAGE_FULL,
    },
)
async def create_job(
    request: Request,
    response: Response,
    res: ResourcesDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> JobOut:
    began = time.perf_counter()
    await check_before_upload(res, caller)
    upload = await receive_upload(
        request, settings.uploads_dir, FormLimits.of(settings), JOB_FORM.names, url_field="url"
    )
    source: Source | None = None
    try:
        options = parse_options(upload.fields, max_speakers=settings.max_speakers)
        source = await source_of(res, caller, upload, options)
        job = await accept(request, res, caller, source, options)
    finally:
        await upload.discard()
        if source is not None:
            await source.discard()
    STAGE_SECONDS.labels("upload").observe(time.perf_counter() - began)
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id).path)
    return job_out(request, job, Done(), caller)


@router.get("", response_model=JobPage, summary="List jobs, newest first")
async def list_jobs(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=200), READ_INTEGER] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000), READ_INTEGER] = 0,
) -> JobPage:
    counted = select(func.count()).select_from(Job)
    listed = select(Job)
    if caller.key_id is not None:  # a key sees its own jobs only
        counted = counted.where(col(Job.owner_id) == caller.key_id)
        listed = listed.where(col(Job.owner_id) == caller.key_id)
    total = (await session.exec(counted)).one()
    jobs = list(
        await session.exec(
            listed.order_by(col(Job.created_at).desc(), col(Job.id).desc())
            .offset(offset)
            .limit(limit)
        )
    )
    ids = [j.id for j in jobs]
    done = await done_by_job(session, ids)
    calls = await deliveries_by_job(session, jobs)
    items = [job_out(request, j, done.get(j.id, Done()), caller, calls.get(j.id, [])) for j in jobs]
    return JobPage(items=items, total=int(total), limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="A job's status")
async def get_job(
    request: Request, session: SessionDep, caller: CallerDep, job: OwnedJob
) -> JobOut:
    done = await done_by_job(session, [job.id])
    calls = await deliveries_by_job(session, [job])
    return job_out(request, job, done.get(job.id, Done()), caller, calls.get(job.id, []))


@router.patch(
    "/{job_id}",
    response_model=JobOut,
    summary="Name a job's speakers (S1 -> Ana); downloads show the names",
    description="A JSON merge patch: each label given a name, null forgets one, labels "
    "left out keep theirs. The job must have completed with speakers.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                kind: {"schema": SpeakerNamesIn.model_json_schema()} for kind in JSON_TYPES
            },
        }
    },
    responses={
        **NOT_FOUND,
        409: {
            "model": ErrorOut,
            "description": "The job has not completed, failed, or has no speakers.",
        },
        413: {"model": ErrorOut, "description": "A body over 16 KiB."},
        415: {"model": ErrorOut, "description": "A body that is not JSON."},
        422: {
            "model": ErrorOut,
            "description": "Not a label (S1..), a label this transcript lacks, a name "
            "that is empty, longer than 64 characters or not printable, or more names "
            "than VTX_MAX_SPEAKERS.",
        },
    },
)
async def rename_speakers(
    request: Request, session: SessionDep, settings: SettingsDep, caller: CallerDep, job: OwnedJob
) -> JobOut:
    patch = parse_names(await read_json_body(request), settings.max_speakers)
    if job.speakers is None:
        raise NotReady("This job was transcribed without speakers (speakers=off): none to name.")
    if job.status == JobStatus.failed:
        raise NotReady("The job failed, so it has no speakers to name.")
    transcript = await session.get(Transcript, job.id)
    if job.status != JobStatus.completed or transcript is None:
        raise NotReady(f"The job is {job.status}; its speakers can be named once it completes.")
    if patch:
        unknown_labels(job, transcript, patch)
    job.speaker_names = merged_names(job.speaker_names, patch)
    session.add(job)
    await session.commit()
    await session.refresh(job)
    log.info("job.speakers_named", job_id=job.id, names=len(job.speaker_names or {}))
    done = await done_by_job(session, [job.id])
    calls = await deliveries_by_job(session, [job])
    return job_out(request, job, done.get(job.id, Done()), caller, calls.get(job.id, []))


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
    summary="Delete a job, its media and its transcript",
)
async def delete_job(res: ResourcesDep, job: OwnedJob) -> Response:
    job_id = job.id
    await _remove(res, job_id)
    if not JobStatus(job.status).finished:
        JOBS.labels("cancelled").inc()
    log.info("job.deleted", job_id=job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _remove(res: Resources, job_id: str) -> None:
    async with res.sessions() as session:
        for table in (Transcript, Diarization, Chunk, CallbackDelivery):
            await session.exec(delete(table).where(col(table.job_id) == job_id))
        await session.exec(delete(Job).where(col(Job.id) == job_id))
        await session.commit()
    await res.store.delete(media_key(job_id))
    await res.store.delete_prefix(chunk_prefix(job_id))


@router.get(
    "/{job_id}/transcript",
    summary="The transcript, in json, txt, srt, vtt or tsv",
    description="SRT and VTT cues follow broadcast rules: at most max_line_width "
    "characters a line, max_line_count lines, max_cue_seconds long, at least 1 s where "
    "the next cue leaves room, 80 ms apart, broken at sentence and clause ends.",
    responses={
        200: {"content": {t.split(";")[0]: {} for t in MEDIA_TYPES.values()}},
        **NOT_FOUND,
        409: {"model": ErrorOut, "description": "The job has not completed (yet)."},
    },
)
async def get_transcript(
    session: SessionDep,
    caller: CallerDep,
    job_id: str,
    rules: Annotated[SubtitleOptions, Query()],
    format: Format = Format.json,
) -> Response:
    # Not OwnedJob: a dependency runs before the query is validated, and a bad
    # `format` is a 422 whether or not the job exists.
    job = await job_or_404(session, job_id, caller)
    if job.status == JobStatus.failed:
        raise NotReady(f"The job failed, so it has no transcript: {job.error}")
    transcript = await session.get(Transcript, job_id)
    if job.status != JobStatus.completed or transcript is None:
        raise NotReady(f"The job is {job.status}; the transcript is not ready yet.")
    doc = name_speakers(transcript_doc(transcript), job.speaker_names)
    body = render(doc, format, rules)
    headers = {"Content-Disposition": f'inline; filename="{job_id}.{format.value}"'}
    return Response(body, media_type=MEDIA_TYPES[format], headers=headers)
