"""Numbers a client sends, read one strict way: ASCII digits of bounded length.

Python's `int()` and `float()`, and pydantic's lax mode with them, take far more than a
person types: Unicode digits ('١٢'), underscores ('1_000'), surrounding spaces, 'nan',
'inf', and thousands of digits (an error past 4,300, which surfaced as a 500). Every
number the gateway reads from a request (form fields, query parameters, headers) goes
through here, so odd text is always a clear 4xx, never a surprise.
"""

from __future__ import annotations

import math
import re

from pydantic import BeforeValidator

MAX_DIGITS = 18  # below 2**63: more than any size, offset or count needs
MAX_DECIMAL_CHARS = 32

# [0-9], not \d: \d matches every script's digits.
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")
_INTEGER = re.compile(rf"-?[0-9]{{1,{MAX_DIGITS}}}")
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")


class NotANumber(ValueError):
    """Text that is not a number in the one form the API reads."""


def digits(text: str) -> int:
    """A count or position: 1 to MAX_DIGITS ASCII digits, nothing else (as in HTTP's DIGIT)."""
    if _DIGITS.fullmatch(text) is None:
        raise NotANumber(f"'{_shown(text)}' is not a whole number of at most {MAX_DIGITS} digits")
    return int(text)


def integer(text: str) -> int:
    """A whole number, optionally negative (so range checks can say what is wrong)."""
    if _INTEGER.fullmatch(text) is None:
        raise NotANumber(f"'{_shown(text)}' is not a whole number of at most {MAX_DIGITS} digits")
    return int(text)


def decimal(text: str) -> float:
    """A finite decimal such as 30, 0.2 or 1e-05 (what HTML forms and SDKs write)."""
    if len(text) > MAX_DECIMAL_CHARS or _DECIMAL.fullmatch(text) is None:
        raise NotANumber(f"'{_shown(text)}' is not a decimal number such as 30 or 0.5")
    value = float(text)
    if not math.isfinite(value):
        raise NotANumber(f"'{_shown(text)}' is too large")
    return value


def _as_integer(value: object) -> object:
    return integer(value) if isinstance(value, str) else value


def _as_decimal(value: object) -> object:
    if isinstance(value, str):
        return decimal(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise NotANumber("the number must be finite")
    return value


def _shown(text: str) -> str:
    """The offending text, short and printable, for a message."""
    cut = text[:24] + ("..." if len(text) > 24 else "")
    return cut.encode("ascii", "backslashreplace").decode("ascii")


# Metadata for `Annotated` pydantic fields and FastAPI parameters: text goes through the
# parsers above, and the schema stays integer / number. After a `Query(...)`, not before
# it, or FastAPI drops the bounds from the OpenAPI document.
READ_INTEGER = BeforeValidator(_as_integer)
READ_DECIMAL = BeforeValidator(_as_decimal)
