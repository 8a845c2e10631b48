"""SQL tables: the database is the source of truth for every job.

Redis only carries work in flight; anything a user can see (status, progress,
transcript) is read from these rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, String
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class JobStatus(StrEnum):
    queued = "queued"
    splitting = "splitting"
    transcribing = "transcribing"
    completed = "completed"
    failed = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.completed, JobStatus.failed)


class CallbackStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class ChunkStatus(StrEnum):
    pending = "pending"
    done = "done"


class SpeakerRoute(StrEnum):
    """How a job's speakers are told apart, decided by the splitter from the audio."""

    channels = "channels"  # each channel one voice: transcribed apart, labelled by channel
    voices = "voices"  # one mix: the speakers service clusters voices over the whole file


def _when(**kw: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kw))


class Job(SQLModel, table=True):
    """One uploaded file and everything known about its way to a transcript."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    status: str = Field(default=JobStatus.queued, sa_type=String(16), index=True)
    error: str | None = None
    filename: str | None = Field(default=None, max_length=255)
    media_key: str = Field(max_length=255)
    # Uploads reach 2 GiB and more; SQLite's INTEGER is 64-bit already.
    size_bytes: int = Field(default=0, sa_type=BigInteger().with_variant(Integer(), "sqlite"))
    language: str | None = Field(default=None, max_length=16)
    chunk_seconds: float
    request_id: str | None = Field(default=None, max_length=64)
    # No foreign key: keys are revoked, never deleted, and SQLite could only add one by
    # copying the whole table.
    owner_id: str | None = Field(default=None, index=True, max_length=32)
    model: str | None = Field(default=None, max_length=255, description="None: the default.")
    task: str = Field(default="transcribe", sa_type=String(16))
    prompt: str | None = Field(default=None, max_length=2000)
    hotwords: str | None = Field(default=None, max_length=500)
    temperature: float | None = None
    vad: bool = Field(default=True, description="Speech windows, batched; False: as it comes.")
    # Who speaks when: None (off), "auto", or a count as digits; min/max bound "auto".
    speakers: str | None = Field(default=None, max_length=8)
    min_speakers: int | None = None
    max_speakers: int | None = None
    speaker_route: str | None = Field(default=None, sa_type=String(16))
    # A user's names for the labels ("S1" -> "Ana"), applied to every download.
    speaker_names: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))
    source_url: str | None = Field(default=None, max_length=2048)

    callback_url: str | None = Field(default=None, max_length=2048)
    callback_status: str | None = Field(default=None, sa_type=String(16))
    callback_attempts: int = 0
    callback_next_at: datetime | None = _when(nullable=True)

    format_name: str | None = Field(default=None, max_length=64)
    duration_s: float | None = None
    audio_codec: str | None = Field(default=None, max_length=32)
    video_codec: str | None = Field(default=None, max_length=32)
    has_video: bool | None = None

    chunks_total: int | None = None
    split_attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = _when(nullable=True)

    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), index=True, nullable=False),
    )
    updated_at: datetime = _when(default=utcnow, onupdate=utcnow, nullable=False)
    started_at: datetime | None = _when(nullable=True)
    finished_at: datetime | None = _when(nullable=True)
    media_deleted_at: datetime | None = _when(nullable=True)


class Chunk(SQLModel, table=True):
    """A slice of a job's audio, cut at a quiet point, transcribed on its own."""

    job_id: str = Field(foreign_key="job.id", primary_key=True, max_length=32, ondelete="CASCADE")
    index: int = Field(primary_key=True)
    start_s: float
    end_s: float
    key: str = Field(max_length=255)
    # The channel this chunk was cut from when each channel is one speaker; None: the mix.
    channel: int | None = None
    status: str = Field(default=ChunkStatus.pending, sa_type=String(16))
    attempts: int = Field(default=0, description="Times a worker has claimed this chunk.")
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = _when(nullable=True)
    language: str | None = Field(default=None, max_length=16)
    language_probability: float | None = None
    segments: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    # Where the splitter's VAD found speech: windows of at most 30 s, each a list of
    # [start, end] pieces in seconds on the chunk's clock, decoded as one input.
    # [] holds no speech; None: the job asked for no VAD (decoded sequentially).
    speech: list[list[list[float]]] | None = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = _when(default=utcnow, onupdate=utcnow, nullable=False)


class Diarization(SQLModel, table=True):
    """Who speaks when over a whole job, found once by the speakers service.

    Leased, counted and retried like a chunk; the merge waits for it when it exists."""

    job_id: str = Field(foreign_key="job.id", primary_key=True, max_length=32, ondelete="CASCADE")
    status: str = Field(default=ChunkStatus.pending, sa_type=String(16))
    attempts: int = Field(default=0, description="Times a worker has claimed it.")
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = _when(nullable=True)
    # [{"start": s, "end": s, "speaker": "S1"}, ...] in time order, whole-file seconds.
    turns: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = _when(default=utcnow, onupdate=utcnow, nullable=False)


class Transcript(SQLModel, table=True):
    """The merged transcript of a completed job, kept until the job is deleted."""

    job_id: str = Field(foreign_key="job.id", primary_key=True, max_length=32, ondelete="CASCADE")
    language: str | None = Field(default=None, max_length=16)
    language_probability: float | None = None
    duration_s: float = 0.0
    segments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = _when(default=utcnow, nullable=False)


class ApiKey(SQLModel, table=True):
    """A caller of the API; only a hash of the key is kept, the key is shown once."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, description="The key's first characters, to tell it by.")
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _when(default=utcnow, nullable=False)
    revoked_at: datetime | None = _when(nullable=True)
    # Signs this key's callbacks (shown once at creation); the server-wide secret is
    # only for jobs submitted without a key.
    webhook_secret: str | None = Field(default=None, max_length=64)
    # Overrides of VTX_QUOTA_AUDIO_HOURS / VTX_QUOTA_STORAGE_GB for this key; None: those.
    quota_audio_hours: float | None = None
    quota_storage_gb: float | None = None


class CallbackDelivery(SQLModel, table=True):
    """One attempt to POST a finished job to its `callback_url`."""

    job_id: str = Field(foreign_key="job.id", primary_key=True, max_length=32, ondelete="CASCADE")
    attempt: int = Field(primary_key=True)
    at: datetime = _when(default=utcnow, nullable=False)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = 0


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time in this suite is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
