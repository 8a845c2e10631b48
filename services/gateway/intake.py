"""Turning a received file (or a fetched URL) into a queued job, for /v1/jobs and /v1/audio.

The order matters: options are checked before any media is probed, the probe decides
what the file is and how long it plays, a job that asks for speakers needs a live
speakers worker (services.gateway.speakers), the caller's quotas (services.gateway.quotas)
are checked under their lock together with the store write and the insert (the
database is the truth for what is held), and only then is the split queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio
import structlog
from fastapi import Request

from services.gateway import quotas
from services.gateway.auth import Caller
from services.gateway.fetch import download
from services.gateway.options import JobOptions
from services.gateway.problems import (
    CannotTranslate,
    EmptyFile,
    InvalidField,
    NotMedia,
    StorageFull,
    TooLarge,
    is_no_space,
)
from services.gateway.speakers import SpeakersWorkers
from services.gateway.uploads import Upload
from shared.config import Settings
from shared.files import remove
from shared.media import MediaError, MediaInfo, check_duration, probe
from shared.models import Job
from shared.pipeline import dispatch
from shared.runtime import Resources
from shared.speech_models import UnknownModel, choose, is_multilingual_async
from shared.store import media_key

log = structlog.get_logger(__name__)


@dataclass
class Source:
    """The media on local disk, however it came: an upload or a download."""

    path: Path
    size: int
    filename: str | None
    url: str | None = None

    async def discard(self) -> None:
        await remove(self.path)


async def choose_model(settings: Settings, options: JobOptions) -> str:
    """The model for this job, or a refusal: an unknown model, or translation asked of
    an English-only model."""
    try:
        model = choose(settings, options.model)
    except UnknownModel as exc:
        raise InvalidField(str(exc), param="model") from exc
    if options.task == "translate" and not await is_multilingual_async(model, settings.model_dir):
        raise CannotTranslate(
            f"The model '{options.model or model}' knows only English, so it cannot translate; "
            "choose a multilingual model (VTX_MODELS lists those offered).",
            param="model",
        )
    return model


async def source_of(res: Resources, caller: Caller, upload: Upload, options: JobOptions) -> Source:
    """The uploaded file, or the media downloaded from `options.url`, which may bring no
    more than the caller may still store."""
    if options.url:
        allowance = await quotas.download_allowance(res, caller)
        path, size, name = await download(
            options.url, res.settings, allowance.max_bytes, allowance.refusal
        )
        return Source(path, size, name, options.url)
    return Source(upload.path, upload.size, upload.filename)


async def accept(
    request: Request, res: Resources, caller: Caller, source: Source, options: JobOptions
) -> Job:
    """Probe, store and queue; a `Problem` for anything refused."""
    model = await choose_model(res.settings, options)
    if source.size == 0:
        raise EmptyFile("The uploaded file is empty.", param="file")
    try:
        info: MediaInfo = await anyio.to_thread.run_sync(probe, source.path)
    except MediaError as exc:
        raise NotMedia(str(exc), param="file") from exc
    try:
        check_duration(info.duration_s, res.settings.max_duration_s)
    except MediaError as exc:
        raise TooLarge(str(exc), param="file") from exc
    if options.speakers is not None:
        # After the client's own mistakes (a file that is not media is a 415 whoever
        # runs), before anything is kept.
        workers: SpeakersWorkers = request.app.state.speakers_workers
        await workers.require(res.queue)
    job = Job(
        media_key="",
        filename=source.filename,
        size_bytes=source.size,
        language=options.language,
        chunk_seconds=options.chunk_seconds or res.settings.chunk_seconds,
        request_id=request.state.request_id,
        owner_id=caller.key_id,
        model=model,
        task=options.task,
        prompt=options.prompt,
        hotwords=options.hotwords,
        temperature=options.temperature,
        vad=res.settings.vad if options.vad is None else options.vad,
        speakers=options.speakers,
        min_speakers=options.min_speakers,
        max_speakers=options.max_speakers,
        source_url=source.url,
        callback_url=options.callback_url,
        format_name=info.format_name,
        duration_s=info.duration_s,
        audio_codec=info.audio_codec,
        video_codec=info.video_codec,
        has_video=info.has_video,
    )
    job.media_key = media_key(job.id)
    async with quotas.admitted(res, caller, info.duration_s, source.size):
        await _store(res, job.media_key, source.path)
        try:
            await _add(res, job)
        except BaseException:
            await res.store.delete(job.media_key)
            raise
    try:
        await dispatch.split(res.queue, job.id, 0, job.request_id, job.owner_id)
    except Exception as exc:  # the row is the truth: the reconciler enqueues it later
        log.warning("job.enqueue_deferred", job_id=job.id, error=repr(exc))
    log.info("job.accepted", job_id=job.id, size_bytes=source.size, duration_s=info.duration_s)
    return job


async def _store(res: Resources, key: str, path: Path) -> None:
    """Put the media in the store; a full store is the server's problem, said as such."""
    try:
        await res.store.put_file(key, path)
    except OSError as exc:
        if is_no_space(exc):
            raise StorageFull() from exc
        raise


async def _add(res: Resources, job: Job) -> None:
    async with res.sessions() as session:
        session.add(job)
        await session.commit()
