"""The optional form fields of a new job, checked before any work is queued."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from services.gateway.uploads import UploadError
from shared.netguard import Refused, check_url


@cache
def known_languages() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


class JobOptions(BaseModel):
    language: str | None = Field(default=None, description="ISO 639-1 code; detected if absent.")
    chunk_seconds: float | None = Field(default=None, ge=5, le=3600)
    model: str | None = Field(default=None, max_length=255)
    task: Literal["transcribe", "translate"] = "transcribe"
    prompt: str | None = Field(default=None, max_length=2000)
    temperature: float | None = Field(default=None, ge=0, le=1)
    callback_url: str | None = Field(default=None, max_length=2048)
    url: str | None = Field(default=None, max_length=2048)

    @field_validator("callback_url", "url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            check_url(value.strip())
        except Refused as exc:
            raise ValueError(str(exc)) from exc
        return value.strip()

    @field_validator("language")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if not value:
            return None
        code = value.strip().lower()
        if code not in known_languages():
            raise ValueError(f"'{value}' is not a language code Whisper knows (e.g. en, de, fr)")
        return code


def parse_options(fields: dict[str, str], known: frozenset[str] | None = None) -> JobOptions:
    """The form's fields as options; `known` limits which fields count (default: all)."""
    names = known if known is not None else frozenset(JobOptions.model_fields)
    data = {k: v for k, v in fields.items() if k in names and v != ""}
    try:
        return JobOptions.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise UploadError(422, f"Invalid form field: {problems}.") from exc
