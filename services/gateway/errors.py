"""The one mapping from what went wrong to what the client reads, at the edge.

Domain code raises `services.gateway.problems.Problem`s (and FastAPI raises its own
HTTPException and RequestValidationError); the handlers `install` registers turn each
into a status, its headers and one body shape: the house shape `{"detail": "..."}`
(`ErrorOut`, with `errors` listing each problem of a request FastAPI could not
validate), or OpenAI's `{"error": {...}}` on the OpenAI-compatible paths, so the
official SDK raises its own typed errors. Server faults are logged with the request
id and answered 5xx with a generic message that echoes nothing of the server's
insides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway import problems as p
from services.gateway.schemas import ErrorOut

log = structlog.get_logger(__name__)

OPENAI_PATHS = ("/v1/audio/", "/v1/models")
SERVER_FAULT = "The server failed to answer this request; it has been logged."

# Most specific first: the first class a problem is an instance of decides.
STATUS: tuple[tuple[type[p.Problem], int], ...] = (
    (p.StorageFull, 507),
    (p.ServerFault, 500),
    (p.BadRequest, 400),
    (p.Unauthorized, 401),
    (p.NotFound, 404),
    (p.NotReady, 409),
    (p.TooLarge, 413),
    (p.NotMedia, 415),
    (p.InvalidField, 422),
    (p.QuotaExceeded, 429),
    (p.TimedOut, 504),
    (p.Unavailable, 503),
)


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

NO_SPEAKERS: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorOut,
        "description": "Speakers were asked for and no speakers worker is running (or the "
        "queue that would tell does not answer); nothing was kept.",
    }
}

STORAGE_FULL: dict[int | str, dict[str, Any]] = {
    507: {"model": ErrorOut, "description": "The server has no storage space left."}
}

TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "file_too_large"),
    415: ("invalid_request_error", "unsupported_media"),
    422: ("invalid_request_error", "invalid_value"),
    429: ("requests", "rate_limit_exceeded"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
    507: ("server_error", "insufficient_storage"),
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
    400: "Empty file, unreadable body, translation asked of an English-only model, or the "
    "transcription failed (the message says why).",
    401: "API keys are on and the request has no valid key.",
    404: "No such resource (or the job was deleted while the request waited).",
    413: "Larger than VTX_MAX_UPLOAD_MB, longer than VTX_MAX_DURATION_S or the key's audio "
    "budget, or past the key's storage quota.",
    415: "Not audio or video in a supported format.",
    422: "A missing or invalid field, a field OpenAI's API does not have, too many fields "
    "(VTX_MAX_FORM_FIELDS, VTX_MAX_FORM_BYTES), or an unknown model.",
    429: "Too many requests, unfinished jobs or audio in flight for this key.",
    503: "Speakers were asked for and no speakers worker is running (the message says "
    "what to install and start).",
    504: "The transcript was not ready in time (VTX_OPENAI_WAIT_S).",
    507: "The server has no storage space left.",
}


def status_of(problem: p.Problem) -> int:
    """The HTTP status a problem answers."""
    for kind, code in STATUS:
        if isinstance(problem, kind):
            return code
    return 500


def headers_of(problem: p.Problem) -> dict[str, str]:
    """The headers a problem's answer carries (how to authenticate, when to retry)."""
    if isinstance(problem, p.Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(problem, p.QuotaExceeded):
        return {"Retry-After": str(problem.retry_after_s)}
    if isinstance(problem, p.Unavailable):
        if problem.retry_after_s is not None:
            return {"Retry-After": str(problem.retry_after_s)}
        return {"X-Should-Retry": "false"}  # OpenAI's SDKs would retry a 503 otherwise
    return {}


def is_openai(request: Request) -> bool:
    """The OpenAI-compatible paths answer in OpenAI's shape; every other path in ours."""
    return request.url.path.startswith(OPENAI_PATHS)


def openai_error(status_code: int, message: str, param: str | None = None) -> JSONResponse:
    kind, code = TYPES.get(status_code, ("server_error", None))
    body = OpenAIError(error=OpenAIErrorBody(message=message, type=kind, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status_code)


def answer(
    request: Request,
    status_code: int,
    message: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[Any] | None = None,
) -> JSONResponse:
    """One refusal in the shape its path speaks."""
    if is_openai(request):
        response = openai_error(status_code, message, param)
    else:
        body = ErrorOut(detail=message, errors=errors).model_dump(exclude_none=True)
        response = JSONResponse(body, status_code=status_code)
    response.headers.update(headers or {})
    return response


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, p.Problem)
    code = status_of(exc)
    if isinstance(exc, p.Unavailable):
        log.info("request.unavailable", path=request.url.path, reason=exc.message)
    elif code >= 500:
        _log_fault(request, exc)
    return answer(request, code, exc.message, param=exc.param, headers=headers_of(exc))


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """FastAPI's and Starlette's own refusals (404, 405, ...) in the path's shape; a 405's
    Allow names every method the path's OpenAPI entry documents (Starlette names only
    those of the one route it tried)."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allow = _documented_methods(request)
        if allow:
            headers["Allow"] = allow
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return answer(request, exc.status_code, str(exc.detail), headers=headers)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422: `detail` says what is wrong first, `errors` lists every problem."""
    assert isinstance(exc, RequestValidationError)
    found = exc.errors()
    first = found[0] if found else {}
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    param = ".".join(where) or None
    message = _readable(first.get("msg", "Invalid request."))
    if is_openai(request):  # OpenAI's shape names the parameter apart from the message
        return openai_error(422, message, param)
    detail = f"{param}: {message}" if param else message
    errors = [
        {
            "loc": jsonable_encoder(e.get("loc", ())),
            "msg": _readable(e.get("msg")),
            "type": str(e.get("type", "invalid")),
        }
        for e in found
    ]
    return answer(request, 422, detail, errors=errors)


def _readable(msg: object) -> str:
    """Pydantic's message without the prefix it puts before a validator's own words."""
    return str(msg or "Invalid value.").removeprefix("Value error, ")


async def on_server_fault(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with the request id, answered 500 (507 for a full
    disk) with a message that gives away nothing of the server."""
    if p.is_no_space(exc):
        return await on_problem(request, p.StorageFull())
    _log_fault(request, exc)
    return answer(request, 500, SERVER_FAULT)


def _log_fault(request: Request, exc: BaseException) -> None:
    rid = getattr(request.state, "request_id", None)
    log.error(
        "request.fault",
        request_id=rid,
        path=request.url.path,
        error=type(exc).__name__,
        exc_info=exc,
    )


def _documented_methods(request: Request) -> str | None:
    paths: dict[str, dict[str, object]] = request.app.openapi().get("paths", {})
    for template, operations in paths.items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            return ", ".join(sorted(m.upper() for m in operations))
    return None


def _validation_in_house_shape(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document with FastAPI's own 422 schema (a list in `detail`) replaced
    by `ErrorOut`, which is what `on_validation_error` answers."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        ours = {"$ref": f"{REF}{ErrorOut.__name__}"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                entry = operation.get("responses", {}).get("422", {})
                media = entry.get("content", {}).get("application/json", {})
                if media.get("schema") == {"$ref": f"{REF}HTTPValidationError"}:
                    media["schema"] = ours
                    entry["description"] = "A parameter is missing or invalid."
        components = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in components:
            components["ErrorOut"] = components.get("ErrorOut") or _error_out_schema(components)
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
        return schema

    return openapi


REF = "#/components/schemas/"


def _error_out_schema(components: dict[str, Any]) -> dict[str, Any]:
    """ErrorOut's schema, its nested models added to `components` (when no route names it)."""
    found = ErrorOut.model_json_schema(ref_template=REF + "{model}")
    components.update(found.pop("$defs", {}))
    return found


def install(app: FastAPI) -> None:
    """Register the mapping: every error the app raises leaves through here."""
    app.openapi = _validation_in_house_shape(app)  # type: ignore[method-assign]
    app.add_exception_handler(p.Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(OSError, on_server_fault)
    app.add_exception_handler(Exception, on_server_fault)
