"""The one way the gateway reads a number from a client: ASCII digits, bounded length."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from services.gateway.numbers import (
    MAX_DIGITS,
    READ_DECIMAL,
    READ_INTEGER,
    NotANumber,
    decimal,
    digits,
    integer,
)

# What Python's int()/float() (and pydantic's lax mode) take, and a person never types.
LOOSE = [
    "\u0661\u0662",  # Arabic-Indic 12
    "\uff11\uff12",  # fullwidth 12
    "\u00b2",  # superscript 2: str.isdigit() says yes, int() says no
    "1_000",
    " 7",
    "7 ",
    "+5",
    "0x10",
    "",
    "1,5",
    "\u0663.\u0665",
    "\x00",
]


@pytest.mark.parametrize("text", ["0", "7", "0042", "9" * MAX_DIGITS])
def test_digits_are_ascii_digits(text: str) -> None:
    assert digits(text) == int(text)


@pytest.mark.parametrize("text", [*LOOSE, "-1", "1.0", "9" * (MAX_DIGITS + 1), "9" * 5000])
def test_anything_else_is_not_a_count(text: str) -> None:
    with pytest.raises(NotANumber, match="whole number"):
        digits(text)


def test_integer_takes_a_minus_so_bounds_can_say_what_is_wrong() -> None:
    assert integer("-3") == -3
    for text in [*LOOSE, "--3", "9" * 5000]:
        with pytest.raises(NotANumber):
            integer(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("30", 30.0), ("0.2", 0.2), (".5", 0.5), ("5.", 5.0), ("1e-05", 1e-05), ("-0.0", 0.0)],
)
def test_decimal_reads_what_forms_and_sdks_write(text: str, value: float) -> None:
    assert decimal(text) == value


@pytest.mark.parametrize(
    "text", [*LOOSE, "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "1" * 40, "1e", "."]
)
def test_decimal_refuses_the_rest(text: str) -> None:
    with pytest.raises(NotANumber):
        decimal(text)


class _Model(BaseModel):
    count: Annotated[int, Field(ge=0), READ_INTEGER] = 0
    share: Annotated[float | None, READ_DECIMAL] = Field(default=None, ge=0, le=1)


def test_the_validators_read_text_and_leave_bounds_to_the_field() -> None:
    assert _Model.model_validate({"count": "12", "share": "0.5"}) == _Model(count=12, share=0.5)
    assert _Model.model_validate({"count": 3, "share": None}).share is None
    for bad in ({"count": "1_2"}, {"count": "-1"}, {"share": "nan"}, {"share": "2"}):
        with pytest.raises(ValidationError):
            _Model.model_validate(bad)
    with pytest.raises(ValidationError, match="finite"):
        _Model.model_validate({"share": float("nan")})


def test_the_message_shows_odd_text_printably_and_briefly() -> None:
    with pytest.raises(NotANumber) as info:
        digits("\u0661" * 1000)
    message = str(info.value)
    assert message.isascii() and len(message) < 200
    assert "\\u0661" in message
