"""The one mapping from problems to answers: status, headers, and the shape by path."""

from __future__ import annotations

import errno
import json

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from services.gateway import problems as p
from services.gateway.errors import (
    SERVER_FAULT,
    headers_of,
    on_problem,
    on_server_fault,
    on_validation_error,
    status_of,
)


def request_to(path: str) -> Request:
    return Request(
        {"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""}
    )


def body(response: Response) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(bytes(response.body))
    return loaded


@pytest.mark.parametrize(
    ("problem", "code"),
    [
        (p.EmptyFile("empty"), 400),
        (p.UnreadableBody("bad body"), 400),
        (p.CannotTranslate("English only"), 400),
        (p.JobFailed("no audio"), 400),
        (p.Unauthorized("no key"), 401),
        (p.NotFound("no job"), 404),
        (p.NotReady("not yet"), 409),
        (p.TooLarge("too big"), 413),
        (p.NotMedia("not media"), 415),
        (p.InvalidField("bad field"), 422),
        (p.QuotaExceeded("busy", 30), 429),
        (p.TimedOut("slow"), 504),
        (p.ServerFault("broken"), 500),
        (p.StorageFull(), 507),
    ],
)
def test_each_problem_has_one_status(problem: p.Problem, code: int) -> None:
    assert status_of(problem) == code


def test_a_problem_of_no_known_kind_is_a_server_fault() -> None:
    assert status_of(p.Problem("odd")) == 500


def test_headers_say_how_to_authenticate_and_when_to_retry() -> None:
    assert headers_of(p.Unauthorized("no key")) == {"WWW-Authenticate": "Bearer"}
    assert headers_of(p.QuotaExceeded("busy", 0)) == {"Retry-After": "1"}
    assert headers_of(p.TooLarge("too big")) == {}


async def test_house_paths_answer_detail_and_openai_paths_answer_error() -> None:
    refusal = p.QuotaExceeded("Too many unfinished jobs.", 30)
    house = await on_problem(request_to("/v1/jobs"), refusal)
    assert house.status_code == 429 and house.headers["retry-after"] == "30"
    assert body(house) == {"detail": "Too many unfinished jobs."}

    openai = await on_problem(request_to("/v1/audio/transcriptions"), refusal)
    assert openai.status_code == 429 and openai.headers["retry-after"] == "30"
    assert body(openai) == {
        "error": {
            "message": "Too many unfinished jobs.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


async def test_openai_errors_name_the_field_at_fault() -> None:
    refusal = p.InvalidField("response_format must be one of json, text.", param="response_format")
    answered = body(await on_problem(request_to("/v1/audio/translations"), refusal))
    assert answered["error"] == {
        "message": "response_format must be one of json, text.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": "invalid_value",
    }


async def test_validation_errors_have_a_string_detail_and_every_error_listed() -> None:
    exc = RequestValidationError(
        [
            {"loc": ("query", "limit"), "msg": "Input should be a valid integer", "type": "int"},
            {"loc": ("query", "offset"), "msg": "Input should be >= 0", "type": "ge", "ctx": {}},
        ]
    )
    answered = await on_validation_error(request_to("/v1/jobs"), exc)
    assert answered.status_code == 422
    assert body(answered) == {
        "detail": "limit: Input should be a valid integer",
        "errors": [
            {"loc": ["query", "limit"], "msg": "Input should be a valid integer", "type": "int"},
            {"loc": ["query", "offset"], "msg": "Input should be >= 0", "type": "ge"},
        ],
    }
    openai = body(await on_validation_error(request_to("/v1/models"), exc))
    assert openai["error"] == {
        "message": "Input should be a valid integer",
        "type": "invalid_request_error",
        "param": "limit",
        "code": "invalid_value",
    }


async def test_a_full_disk_is_507_and_any_other_fault_500_and_neither_echoes_internals() -> None:
    secret = "/srv/vtx/spool/upload-abc"
    full = OSError(errno.ENOSPC, "No space left on device", secret)
    answered = await on_server_fault(request_to("/v1/jobs"), full)
    assert answered.status_code == 507
    assert body(answered) == {"detail": p.StorageFull().message}

    fault = await on_server_fault(request_to("/v1/audio/transcriptions"), KeyError(secret))
    assert fault.status_code == 500
    assert body(fault)["error"] == {
        "message": SERVER_FAULT,
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert secret not in bytes(answered.body).decode() + bytes(fault.body).decode()


def test_only_a_full_disk_counts_as_no_space() -> None:
    assert p.is_no_space(OSError(errno.ENOSPC, "full"))
    assert p.is_no_space(OSError(errno.EDQUOT, "quota"))
    assert not p.is_no_space(OSError(errno.EACCES, "denied"))
    assert not p.is_no_space(ValueError("no"))
