from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings


def test_env_prefix_and_embedded_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VTX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VTX_MODEL", "/models/large-v3")
    monkeypatch.setenv("VTX_MAX_UPLOAD_MB", "3")
    settings = Settings()
    assert settings.model == "/models/large-v3"
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'vtx.db'}"
    assert settings.resolved_store_url == (tmp_path / "store").resolve().as_uri()
    assert settings.max_upload_bytes == 3 * 1024 * 1024
    assert "redis_url" not in settings.model_fields_set


def test_explicit_redis_url_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTX_REDIS_URL", "redis://elsewhere:6379/2")
    assert "redis_url" in Settings().model_fields_set


def test_service_urls_follow_ports_unless_configured() -> None:
    settings = Settings(splitter_port=9101)
    assert settings.service_urls()["splitter"] == "http://127.0.0.1:9101"
    custom = Settings(health_services={"gateway": "http://gw:8000"})
    assert custom.service_urls() == {"gateway": "http://gw:8000"}
