"""One reading of a request's speaker count (shared/speaker_count.py), as the gateway,
the splitter and the speakers service all use it."""

from __future__ import annotations

import pytest

from services.splitter.tasks import two_allowed
from shared.config import Settings
from shared.models import Job
from shared.speaker_count import (
    DEFAULT_LIMIT,
    SpeakerCount,
    SpeakerCountError,
    read_speakers,
)


def test_the_default_limit_is_the_settings_default() -> None:
    assert Settings.model_fields["max_speakers"].default == DEFAULT_LIMIT


@pytest.mark.parametrize(
    ("value", "stored"), [("off", None), ("auto", "auto"), ("2", "2"), ("007", "7")]
)
def test_the_speakers_field_is_stored_as_none_auto_or_digits(
    value: str, stored: str | None
) -> None:
    assert read_speakers(value) == stored


@pytest.mark.parametrize("value", ["Auto", "-1", "2.5", "\u0662", "1234", "", "many"])
def test_other_speakers_values_are_refused(value: str) -> None:
    with pytest.raises(SpeakerCountError, match="is not off, auto or a number") as refused:
        read_speakers(value)
    assert refused.value.field == "speakers"


def test_a_request_reads_as_its_bounds() -> None:
    assert SpeakerCount.of_request(None, None, None, 20) is None
    auto = SpeakerCount.of_request("auto", 2, None, 20)
    assert auto == SpeakerCount(None, 2, None, 20)
    assert (auto.lower, auto.upper) == (2, 20)
    three = SpeakerCount.parse("3", None, None, 20)
    assert (three.lower, three.upper) == (3, 3)
    assert SpeakerCount.parse("auto", None, 4, 20).upper == 4


def test_the_servers_limit_bounds_every_stage() -> None:
    """A count the gateway accepts under a raised VTX_MAX_SPEAKERS is one the speakers
    service takes too: both read it with the same limit."""
    assert SpeakerCount.parse("30", None, None, 50).upper == 30
    assert SpeakerCount.parse("auto", None, None, 50).upper == 50
    with pytest.raises(SpeakerCountError, match="30 is not from 1 to 20"):
        SpeakerCount.parse("30", None, None, 20)


@pytest.mark.parametrize(
    ("speakers", "low", "high", "field", "says"),
    [
        (None, 2, None, "min_speakers", "taken only with speakers=auto"),
        (None, None, 2, "max_speakers", "taken only with speakers=auto"),
        ("0", None, None, "speakers", "0 is not from 1 to 20"),
        ("auto", 4, 2, "min_speakers", "min_speakers \\(4\\) is more than max_speakers \\(2\\)"),
        ("auto", None, 21, "max_speakers", "VTX_MAX_SPEAKERS \\(20\\)"),
        ("auto", 0, None, "min_speakers", "0 is not from 1"),
        ("5", 1, 3, "speakers", "speakers=5 is outside min_speakers=1 .. max_speakers=3"),
        ("2", 3, None, "speakers", "send a count within them"),
        ("x", None, None, "speakers", "is not auto or a count"),
    ],
)
def test_impossible_counts_name_the_field_to_change(
    speakers: str | None, low: int | None, high: int | None, field: str, says: str
) -> None:
    with pytest.raises(SpeakerCountError, match=says) as refused:
        SpeakerCount.of_request(speakers, low, high, 20)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("speakers", "low", "high", "allowed"),
    [
        (None, None, None, False),
        ("2", None, None, True),
        ("3", None, None, False),
        ("auto", None, None, True),
        ("auto", 3, None, False),
        ("auto", None, 1, False),
        ("auto", 1, 2, True),
    ],
)
def test_the_channels_route_needs_two_speakers_allowed(
    speakers: str | None, low: int | None, high: int | None, allowed: bool
) -> None:
    job = Job(filename="a.wav", speakers=speakers, min_speakers=low, max_speakers=high)
    assert two_allowed(job, 20) is allowed


def test_a_request_beyond_a_lowered_limit_takes_the_voices_route() -> None:
    """Accepted under a higher VTX_MAX_SPEAKERS: the split goes on; the speakers service
    says why the count is refused."""
    assert two_allowed(Job(filename="a.wav", speakers="30"), 20) is False
