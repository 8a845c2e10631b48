"""The one `Settings` class: every knob of every service, read from `VTX_*` variables.

Defaults are the embedded, one-machine form (SQLite, a local folder as object store,
the bundled `tiny.en` model); each production form is one variable away.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, computed_field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Service = Literal["gateway", "splitter", "transcriber", "speakers", "health"]
SERVICES: tuple[Service, ...] = ("gateway", "splitter", "transcriber", "speakers", "health")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "vtx"


class Settings(BaseSettings):
    """Configuration for the whole suite; each service reads the fields it needs."""

    model_config = SettingsConfigDict(
        env_prefix="VTX_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Where the embedded defaults keep their files (database, object store, Redis).
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default SQLite in data_dir."
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis for the queues. `vtx up` starts its own when this is unset.",
    )
    store_url: str | None = Field(
        default=None,
        description="Object store URL (file://, s3://, gs://, az://); default data_dir/store.",
    )

    host: str = "127.0.0.1"
    gateway_port: int = 8000
    splitter_port: int = 8001
    transcriber_port: int = 8002
    health_port: int = 8003
    speakers_port: int = 8004
    embedded_redis_port: int = 6380

    # Uploads and media limits.
    max_upload_mb: int = Field(default=2048, ge=1)
    max_duration_s: float = Field(default=6 * 3600, gt=0)
    chunk_seconds: float = Field(default=60.0, ge=5, le=3600)

    # Speech model.
    model: str = Field(
        default="tiny.en",
        description="faster-whisper model name or local path; tiny.en is bundled.",
    )
    model_dir: Path | None = Field(default=None, description="Download cache for named models.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field(default="auto", description="auto: int8 on CPU, float16 on CUDA.")
    # 0 means chosen from the device and the cores (services/transcriber/engine.py `layout`).
    transcriber_processes: int = Field(
        default=0, ge=0, description="Transcriber processes, each with its own model."
    )
    transcriber_workers: int = Field(
        default=0, ge=0, description="Model replicas (chunks decoded at once) per process."
    )
    cpu_threads: int = Field(default=0, ge=0, description="CPU threads per chunk.")
    beam_size: int = Field(default=0, ge=0, le=20, description="Beam search width.")
    vad: bool = Field(
        default=True,
        description="Find speech first (silero VAD): cuts in silence, batched speech windows.",
    )
    batch_size: int = Field(
        default=0, ge=0, le=64, description="Speech windows per model call; 0: from the device."
    )
    batch_wait_ms: float = Field(
        default=50.0, ge=0, le=5000, description="How long a transcriber waits to fill a batch."
    )

    # Speakers (services/speakers/, the `speakers` extra): who speaks when, over the whole file.
    speakers_concurrency: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Diarizations at once per speakers process (each uses every core).",
    )
    speakers_timeout_s: int = Field(
        default=2 * 3600,
        ge=10,
        description="Longest one diarization may run: a 6-hour file at the slowest measured "
        "7x real time (2 busy cores) takes under an hour.",
    )

    # Queue behaviour and recovery.
    job_timeout_s: int = Field(default=3600, ge=10)
    max_tries: int = Field(
        default=3, ge=1, description="Starts of a split or chunk before its job fails."
    )
    lease_s: float = Field(
        default=30.0,
        ge=1,
        description="A worker that stops heartbeating loses its work after this.",
    )
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    shutdown_grace_s: float = Field(
        default=30.0, ge=0, description="On SIGTERM, time for running work to finish."
    )
    media_retention: timedelta = Field(
        default=timedelta(days=7),
        description="Keep source media this long after its job ends (seconds or ISO 8601, P7D).",
    )

    # Health aggregation: service name -> base URL; default the `vtx up` ports.
    health_services: dict[str, str] | None = None
    health_timeout_s: float = 2.0

    # API: models, keys, limits, callbacks, URL ingestion.
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models a request may choose besides `model` (comma-separated or JSON).",
    )
    models_loaded: int = Field(
        default=2, ge=1, description="Models a transcriber keeps loaded at once (LRU)."
    )
    auth: Literal["auto", "required", "off"] = Field(
        default="auto",
        description="auto: API keys are required once one exists; required; off (open).",
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per minute per API key; 0: no limit."
    )
    max_active_jobs: int = Field(
        default=10, ge=0, description="Unfinished jobs per API key at once; 0: no limit."
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Signs media links; default a file in data_dir/secrets."
    )
    media_token_s: int = Field(default=3600, ge=10, description="Lifetime of a media link.")
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC key of callbacks; default a file in data_dir/secrets."
    )
    callback_retry_for: timedelta = Field(
        default=timedelta(hours=24), description="How long a failing callback is retried."
    )
    callback_backoff_s: float = Field(
        default=5.0, gt=0, description="First retry delay of a callback; doubles each time."
    )
    callback_timeout_s: float = Field(default=10.0, gt=0)
    url_timeout_s: float = Field(
        default=120.0, gt=0, description="Longest a media download by URL may take."
    )
    url_max_redirects: int = Field(default=5, ge=0)
    url_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="FOR TESTS: CIDR networks exempt from the private-address refusal.",
    )
    openai_wait_s: float = Field(
        default=3600.0, gt=0, description="How long /v1/audio/* waits for its transcript."
    )

    # Exposure: which Host names the gateway answers, and what one key may hold at once.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        description="Host names (and addresses) the gateway answers; '*' for any.",
    )
    quota_audio_hours: float = Field(
        default=24.0, ge=0, description="Audio hours in flight per key; 0: no limit."
    )
    quota_storage_gb: float = Field(
        default=50.0, ge=0, description="Stored media per key (per server when open); 0: none."
    )
    failed_media_retention: timedelta = Field(
        default=timedelta(days=1),
        description="Keep the media of failed jobs this long (seconds or ISO 8601).",
    )

    # Bounds on what one request or connection may hold.
    max_form_fields: int = Field(default=32, ge=1, description="Non-file parts per form.")
    max_form_bytes: int = Field(
        default=32 * 1024, ge=1024, description="Total bytes of a form's non-file parts."
    )
    max_speakers: int = Field(
        default=20,
        ge=1,
        le=100,
        description="The most speakers a request may ask for (speakers, min_speakers, "
        "max_speakers) and the most names a job's speakers may be given.",
    )
    callback_concurrency: int = Field(
        default=4, ge=1, description="Callback deliveries at once per delivering process."
    )
    max_event_streams: int = Field(
        default=8, ge=1, description="Event streams open at once per key (per address if open)."
    )
    event_stream_max_s: float = Field(
        default=3600.0, gt=0, description="Longest one event stream stays open (it reconnects)."
    )
    max_connections: int = Field(
        default=1000, ge=1, description="Concurrent connections per service process."
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest a client may take to send a request's headers."
    )
    body_idle_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest pause between two pieces of a request's body."
    )

    @field_validator(
        "media_retention", "failed_media_retention", "callback_retry_for", mode="before"
    )
    @classmethod
    def _seconds(cls, value: object) -> object:
        """Durations as plain seconds (`0`, `90`, `1.5`) or ISO 8601 (`P7D`, `PT2H`)."""
        text = value.strip() if isinstance(value, str) else ""
        if text.isascii() and text.replace(".", "", 1).isdecimal():
            return timedelta(seconds=float(text))
        return value

    @field_validator("models", "url_allow_networks", "allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """`a,b` or a JSON list, from the environment; a list as is."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    detect_blocking: bool = Field(
        default=False,
        description="Tests only: fail any blocking call made on an event loop "
        "(shared/blocking.py; needs blockbuster from the dev extra)",
    )

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'vtx.db'}"

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def resolved_store_url(self) -> str:
        return self.store_url or (self.data_dir / "store").resolve().as_uri()

    @property
    def uploads_dir(self) -> Path:
        """Local spool for uploads in flight: they are probed here before the store."""
        return self.data_dir / "uploads"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def port(self, service: Service) -> int:
        ports: dict[str, int] = {
            "gateway": self.gateway_port,
            "splitter": self.splitter_port,
            "transcriber": self.transcriber_port,
            "health": self.health_port,
            "speakers": self.speakers_port,
        }
        return ports[service]

    def service_urls(self) -> dict[str, str]:
        """Where the aggregator finds each service (the `vtx up` layout unless configured)."""
        if self.health_services is not None:
            return dict(self.health_services)
        return {
            name: f"http://{self.host}:{self.port(name)}"
            for name in ("gateway", "splitter", "transcriber", "speakers")
        }
