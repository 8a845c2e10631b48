"""The public API's response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Progress(BaseModel):
    chunks_done: int
    chunks_total: int | None = Field(description="Known once splitting has finished.")
    audio_seconds_done: float
    audio_seconds_total: float | None
    percent: float = Field(ge=0, le=100)
    eta_seconds: float | None = Field(description="Estimated from the pace so far.")


class MediaFacts(BaseModel):
    format: str | None
    duration_seconds: float | None
    audio_codec: str | None
    video_codec: str | None
    has_video: bool | None


class JobLinks(BaseModel):
    self: str
    transcript: str
    media: str = Field(
        description="The uploaded file, with Range support, while retained; with API keys "
        "on, it carries a short-lived token, so a <video> element can play it."
    )
    events: str = Field(default="", description="Server-sent events of status and progress.")


class DeliveryOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = Field(description="The receiver's answer; null if none came.")
    error: str | None
    duration_ms: int


class CallbackOut(BaseModel):
    url: str
    status: str | None = Field(
        description="null until the job ends, then pending, delivered or failed."
    )
    attempts: int
    next_attempt_at: datetime | None
    deliveries: list[DeliveryOut] = Field(description="Every attempt so far, oldest first.")


class JobOut(BaseModel):
    id: str
    status: str = Field(description="queued, splitting, transcribing, completed or failed.")
    error: str | None = Field(description="Why a failed job failed, for a person to read.")
    filename: str | None
    language: str | None = Field(description="The language asked for, if any.")
    model: str | None = Field(default=None, description="The speech model used.")
    task: str = Field(default="transcribe", description="transcribe, or translate (to English).")
    vad: bool = Field(
        default=True,
        description="Whether speech is found first (silero VAD) and only it is decoded, in "
        "batched windows; false: all the audio, in order.",
    )
    hotwords: str | None = Field(default=None, description="The words favoured while decoding.")
    speakers: str = Field(
        default="off",
        description="Who speaks when, as asked: off, auto, or the number of speakers.",
    )
    min_speakers: int | None = Field(default=None, description="With auto: at least this many.")
    max_speakers: int | None = Field(default=None, description="With auto: at most this many.")
    speaker_route: str | None = Field(
        default=None,
        description="How speakers are told apart, decided from the audio once split: "
        "channels (each channel one voice) or voices (one mix, voices clustered).",
    )
    speaker_names: dict[str, str] = Field(
        default_factory=dict,
        description="Names given to the labels (S1 -> Ana) with PATCH; downloads in txt, "
        "srt, vtt and tsv show them in place of the labels.",
    )
    source_url: str | None = Field(default=None, description="Where the media was fetched from.")
    callback: CallbackOut | None = Field(
        default=None, description="Where the outcome is POSTed, and how that went."
    )
    chunk_seconds: float
    size_bytes: int
    progress: Progress
    media: MediaFacts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    links: JobLinks


class SpeakerNamesIn(BaseModel):
    """A JSON merge patch of the job: only its speakers' names may change."""

    speaker_names: dict[str, str | None] | None = Field(
        description="Label (S1, S2, ...) -> name of 1 to 64 printable characters; null "
        "forgets that label's name; null for the whole object forgets every name. Labels "
        "left out keep their names.",
        json_schema_extra={"maxProperties": 100},
    )


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class ValidationProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query, path or header, then the name.")
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every refusal outside the OpenAI-compatible paths (those answer OpenAI's shape)."""

    detail: str = Field(description="What is wrong, for a person to read.")
    errors: list[ValidationProblem] | None = Field(
        default=None,
        description="Only on a 422 from request validation: every problem found, not just "
        "the first that `detail` names.",
    )


class CountOut(BaseModel):
    used: int
    limit: int | None = Field(description="null: no limit.")


class AmountOut(BaseModel):
    used: float
    limit: float | None = Field(description="null: no limit.")


class UsageOut(BaseModel):
    key_id: str | None = Field(
        description="The key these numbers are for; null when the API is open, where they "
        "count every job sent without a key."
    )
    active_jobs: CountOut = Field(description="Jobs not yet completed or failed.")
    audio_seconds_in_flight: AmountOut = Field(
        description="Audio of those jobs, from the probe at upload (limit: "
        "VTX_QUOTA_AUDIO_HOURS x 3600, or the key's own); a new job over it is 429."
    )
    stored_bytes: CountOut = Field(
        description="Media still kept, of jobs in flight and ended (limit: "
        "VTX_QUOTA_STORAGE_GB, or the key's own); a new file over it is 413."
    )
    requests_this_minute: CountOut | None = Field(
        description="Requests in the current minute, this one included "
        "(VTX_RATE_LIMIT_PER_MINUTE); null when the API is open or it cannot be read."
    )
