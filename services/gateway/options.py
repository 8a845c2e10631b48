"""The optional form fields of a new job, checked before any work is queued."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, Field, ValidationError, field_validator

from services.gateway.uploads import UploadError


@cache
def known_languages() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


class JobOptions(BaseModel):
    language: str | None = Field(default=None, description="ISO 639-1 code; detected if absent.")
    chunk_seconds: float | None = Field(default=None, ge=5, le=3600)

    @field_validator("language")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if not value:
            return None
        code = value.strip().lower()
        if code not in known_languages():
            raise ValueError(f"'{value}' is not a language code Whisper knows (e.g. en, de, fr)")
        return code


def parse_options(fields: dict[str, str]) -> JobOptions:
    data = {k: v for k, v in fields.items() if k in JobOptions.model_fields and v != ""}
    try:
        return JobOptions.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise UploadError(422, f"Invalid form field: {problems}.") from exc
