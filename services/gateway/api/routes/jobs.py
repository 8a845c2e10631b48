"""`/v1/jobs`: submit media, follow its progress, fetch or delete its transcript."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import structlog
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy import delete, func
from sqlmodel import col, select

from services.gateway.deps import ResourcesDep, SessionDep, SettingsDep
from services.gateway.options import parse_options
from services.gateway.schemas import ErrorOut, JobOut, JobPage
from services.gateway.uploads import FILE_FIELD, Upload, UploadError, receive_upload
from services.gateway.views import Done, done_by_job, job_out
from shared import dispatch
from shared.media import MediaError, MediaInfo, probe
from shared.models import Chunk, Job, JobStatus, Transcript
from shared.runtime import Resources
from shared.store import chunk_prefix, media_key
from shared.transcript import MEDIA_TYPES, Format, Segment, TranscriptDoc, render

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No job with this id."}
}

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary"},
                        "language": {
                            "type": "string",
                            "description": "e.g. en; detected if absent",
                        },
                        "chunk_seconds": {"type": "number", "minimum": 5, "maximum": 3600},
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    summary="Submit an audio or video file for transcription",
    openapi_extra=UPLOAD_BODY,
    responses={
        400: {"model": ErrorOut, "description": "Empty file or unreadable body."},
        413: {"model": ErrorOut, "description": "Larger than VTX_MAX_UPLOAD_MB."},
        415: {"model": ErrorOut, "description": "Not audio or video in a supported format."},
        422: {"model": ErrorOut, "description": "Missing file or invalid field."},
    },
)
async def create_job(
    request: Request, response: Response, res: ResourcesDep, settings: SettingsDep
) -> JobOut:
    try:
        upload = await receive_upload(request, settings.uploads_dir, settings.max_upload_bytes)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.message) from exc
    try:
        job = await _accept(request, res, upload)
    finally:
        upload.discard()
    response.headers["Location"] = str(request.url_for("get_job", job_id=job.id).path)
    return job_out(request, job, Done())


async def _accept(request: Request, res: Resources, upload: Upload) -> Job:
    try:
        options = parse_options(upload.fields)
        if upload.size == 0:
            raise UploadError(400, "The uploaded file is empty.")
        info: MediaInfo = await anyio.to_thread.run_sync(probe, upload.path)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.message) from exc
    except MediaError as exc:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(exc)) from exc
    job = Job(
        media_key="",
        filename=upload.filename,
        size_bytes=upload.size,
        language=options.language,
        chunk_seconds=options.chunk_seconds or res.settings.chunk_seconds,
        request_id=request.state.request_id,
        format_name=info.format_name,
        duration_s=info.duration_s,
        audio_codec=info.audio_codec,
        video_codec=info.video_codec,
        has_video=info.has_video,
    )
    job.media_key = media_key(job.id)
    await res.store.put_file(job.media_key, upload.path)
    async with res.sessions() as session:
        session.add(job)
        await session.commit()
    try:
        await dispatch.split(res.queue, job.id, 0, job.request_id)
    except Exception as exc:  # the row is the truth: the reconciler enqueues it later
        log.warning("job.enqueue_deferred", job_id=job.id, error=repr(exc))
    log.info("job.accepted", job_id=job.id, size_bytes=upload.size, duration_s=info.duration_s)
    return job


@router.get("", response_model=JobPage, summary="List jobs, newest first")
async def list_jobs(
    request: Request,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobPage:
    total = (await session.exec(select(func.count()).select_from(Job))).one()
    jobs = list(
        await session.exec(
            select(Job)
            .order_by(col(Job.created_at).desc(), col(Job.id).desc())
            .offset(offset)
            .limit(limit)
        )
    )
    done = await done_by_job(session, [j.id for j in jobs])
    items = [job_out(request, j, done.get(j.id, Done())) for j in jobs]
    return JobPage(items=items, total=int(total), limit=limit, offset=offset)


async def _job_or_404(session: SessionDep, job_id: str) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"No job with id '{job_id}'.")
    return job


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="A job's status")
async def get_job(request: Request, session: SessionDep, job_id: str) -> JobOut:
    job = await _job_or_404(session, job_id)
    done = await done_by_job(session, [job.id])
    return job_out(request, job, done.get(job.id, Done()))


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
    summary="Delete a job, its media and its transcript",
)
async def delete_job(session: SessionDep, res: ResourcesDep, job_id: str) -> Response:
    await _job_or_404(session, job_id)
    await _remove(res, job_id)
    log.info("job.deleted", job_id=job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _remove(res: Resources, job_id: str) -> None:
    async with res.sessions() as session:
        for table in (Transcript, Chunk):
            await session.exec(delete(table).where(col(table.job_id) == job_id))
        await session.exec(delete(Job).where(col(Job.id) == job_id))
        await session.commit()
    await res.store.delete(media_key(job_id))
    await res.store.delete_prefix(chunk_prefix(job_id))


@router.get(
    "/{job_id}/transcript",
    summary="The transcript, in json, txt, srt, vtt or tsv",
    responses={
        200: {"content": {t.split(";")[0]: {} for t in MEDIA_TYPES.values()}},
        **NOT_FOUND,
        409: {"model": ErrorOut, "description": "The job has not completed (yet)."},
    },
)
async def get_transcript(
    session: SessionDep, job_id: str, format: Format = Format.json
) -> Response:
    job = await _job_or_404(session, job_id)
    if job.status == JobStatus.failed:
        raise HTTPException(409, f"The job failed, so it has no transcript: {job.error}")
    transcript = await session.get(Transcript, job_id)
    if job.status != JobStatus.completed or transcript is None:
        raise HTTPException(409, f"The job is {job.status}; the transcript is not ready yet.")
    doc = TranscriptDoc(
        language=transcript.language,
        language_probability=transcript.language_probability,
        duration=transcript.duration_s,
        segments=[Segment.model_validate(s) for s in transcript.segments],
    )
    body = render(doc, format)
    headers = {"Content-Disposition": f'inline; filename="{job_id}.{format.value}"'}
    return Response(body, media_type=MEDIA_TYPES[format], headers=headers)
