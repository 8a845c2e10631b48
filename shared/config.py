"""The one `Settings` class: every knob of every service, read from `VTX_*` variables.

Defaults are the embedded, one-machine form (SQLite, a local folder as object store,
the bundled `tiny.en` model); each production form is one variable away.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict

Service = Literal["gateway", "splitter", "transcriber", "health"]
SERVICES: tuple[Service, ...] = ("gateway", "splitter", "transcriber", "health")


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
    transcriber_workers: int = Field(
        default=0, ge=0, description="Chunks transcribed at once per process; 0: one per core."
    )
    cpu_threads: int = Field(default=0, ge=0, description="Threads per chunk; 0: chosen.")
    beam_size: int = Field(default=5, ge=1, le=20)

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

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

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

    @property
    def workers(self) -> int:
        return self.transcriber_workers or (os.cpu_count() or 1)

    def port(self, service: Service) -> int:
        ports: dict[str, int] = {
            "gateway": self.gateway_port,
            "splitter": self.splitter_port,
            "transcriber": self.transcriber_port,
            "health": self.health_port,
        }
        return ports[service]

    def service_urls(self) -> dict[str, str]:
        """Where the aggregator finds each service (the `vtx up` layout unless configured)."""
        if self.health_services is not None:
            return dict(self.health_services)
        return {
            name: f"http://{self.host}:{self.port(name)}"
            for name in ("gateway", "splitter", "transcriber")
        }
