"""Error bodies as the OpenAPI document shows them: the house shape `{"detail": ...}`,
and OpenAI's `{"error": {...}}` for the OpenAI-compatible routes.

`OpenAIRoute` turns every refusal of those routes (HTTPException, validation) into
OpenAI's shape, so the official SDK raises its own typed errors.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from services.gateway.schemas import ErrorOut


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorOut,
        "description": "API keys are on and the request has no valid key.",
    },
    429: {
        "model": ErrorOut,
        "description": "Too many requests this minute, too many unfinished jobs or too much "
        "audio in flight for this key, or too many open event streams; Retry-After says when "
        "to try again.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    },
}

TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "file_too_large"),
    415: ("invalid_request_error", "unsupported_media"),
    422: ("invalid_request_error", "invalid_value"),
    429: ("requests", "rate_limit_exceeded"),
    504: ("server_error", "timeout"),
}


def openai_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, in OpenAI's error shape."""
    described: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": OpenAIError, "description": _DESCRIPTIONS[code]}
        if code == 429:
            entry["headers"] = AUTH_ERRORS[429]["headers"]
        described[code] = entry
    return described


_DESCRIPTIONS = {
    400: "Empty file, or translation asked of an English-only model.",
    401: "API keys are on and the request has no valid key.",
    404: "No such resource.",
    413: "Larger than VTX_MAX_UPLOAD_MB, longer than VTX_MAX_DURATION_S or the key's audio "
    "budget, or past the key's storage quota.",
    415: "Not audio or video in a supported format.",
    422: "A missing or invalid field, a field OpenAI's API does not have, too many fields "
    "(VTX_MAX_FORM_FIELDS, VTX_MAX_FORM_BYTES), or an unknown model.",
    429: "Too many requests, unfinished jobs or audio in flight for this key.",
    500: "The transcription failed.",
    504: "The transcript was not ready in time (VTX_OPENAI_WAIT_S).",
}


def openai_error(status_code: int, message: str, param: str | None = None) -> JSONResponse:
    kind, code = TYPES.get(status_code, ("server_error", None))
    body = OpenAIError(error=OpenAIErrorBody(message=message, type=kind, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status_code)


class OpenAIRoute(APIRoute):
    """An APIRoute whose refusals come out in OpenAI's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                response = openai_error(exc.status_code, str(exc.detail))
                for name, value in (exc.headers or {}).items():
                    response.headers[name] = value
                return response
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                location = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
                param = ".".join(location) or None
                return openai_error(422, str(first.get("msg", "Invalid request.")), param)

        return handle
