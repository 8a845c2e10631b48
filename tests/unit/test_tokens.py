"""Media tokens: signed for one job and the key that asked, parsed strictly."""

from __future__ import annotations

import pytest

from services.gateway.auth import media_token, media_token_valid, parse_media_token

JOB, OTHER_JOB = "a" * 32, "b" * 32
KEY, OTHER_KEY = "1" * 32, "2" * 32


def test_a_token_is_for_one_job_and_one_key_and_expires() -> None:
    token = media_token(b"k", JOB, KEY, ttl_s=60, now=1000)
    assert media_token_valid(b"k", JOB, KEY, token, now=1030)
    assert not media_token_valid(b"k", OTHER_JOB, KEY, token, now=1030)
    assert not media_token_valid(b"k", JOB, OTHER_KEY, token, now=1030)
    assert not media_token_valid(b"k", JOB, KEY, token, now=1061)
    assert not media_token_valid(b"other", JOB, KEY, token, now=1030)


def test_a_token_has_one_shape() -> None:
    token = media_token(b"k", JOB, KEY, ttl_s=60, now=1000)
    stamp, mac = token.split(".")
    assert stamp == "1060" and len(mac) == 32
    assert parse_media_token(token) == (1060, mac)


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "1060",
        "1060.",
        ".{mac}",
        "\u00b2.{mac}",  # superscript two: str.isdigit() says yes, int() says no
        "\u0661\u0660\u0666\u0660.{mac}",  # Arabic-Indic digits
        "{big}.{mac}",  # past int()'s 4,300-digit limit
        "1060.{mac}x",
        "1060.{short}",
        "1060.{accented}",
        "+1060.{mac}",
        " 1060.{mac}",
        "1060.{mac}\n",
        "1060.{mac}.{mac}",
    ],
)
def test_a_token_of_any_other_shape_is_refused_without_an_error(forged: str) -> None:
    mac = media_token(b"k", JOB, KEY, ttl_s=60, now=1000).split(".")[1]
    token = forged.format(mac=mac, big="9" * 5000, short=mac[:31], accented="é" * 32)
    assert parse_media_token(token) is None
    assert not media_token_valid(b"k", JOB, KEY, token, now=1030)
