from __future__ import annotations

import json

from shared.transcript import (
    Format,
    Segment,
    TranscriptDoc,
    Word,
    render,
    timestamp,
)


def doc(*segments: tuple[float, float, str]) -> TranscriptDoc:
    return TranscriptDoc(
        language="en",
        duration=10.0,
        segments=[Segment(id=i, start=s, end=e, text=t) for i, (s, e, t) in enumerate(segments)],
    )


def test_timestamps_round_to_the_millisecond_and_carry_hours() -> None:
    assert timestamp(0, ",") == "00:00:00,000"
    assert timestamp(3661.2345, ",") == "01:01:01,234"
    assert timestamp(59.9996, ".") == "00:01:00.000"
    assert timestamp(-0.2, ".") == "00:00:00.000"


def test_srt_numbers_cues_from_one_and_uses_commas() -> None:
    out = render(doc((0.0, 1.5, " Hello there."), (8.0, 9.25, " General Kenobi.")), Format.srt)
    assert out == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
        "2\n00:00:08,000 --> 00:00:09,250\nGeneral Kenobi.\n"
    )


def test_srt_keeps_cue_structure_safe() -> None:
    out = render(doc((0, 1, "a --> b\n\nc")), Format.srt)
    assert out == "1\n00:00:00,000 --> 00:00:01,000\na -> b c\n"


def test_srt_skips_empty_segments_without_gaps_in_numbering() -> None:
    out = render(doc((0, 1, "one"), (1, 2, "   "), (8, 9, "two")), Format.srt)
    assert "\n2\n00:00:08,000" in out
    assert out.count(" --> ") == 2


def test_vtt_has_header_dots_and_escapes_markup() -> None:
    out = render(doc((1.0, 2.0, "5 < 6 & 7 > 3")), Format.vtt)
    assert out == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n5 &lt; 6 &amp; 7 &gt; 3\n"


def test_tsv_uses_integer_milliseconds_and_no_stray_tabs() -> None:
    out = render(doc((0.5, 1.25, "tab\there")), Format.tsv)
    assert out == "start\tend\ttext\n500\t1250\ttab here\n"


def test_txt_is_one_line_per_segment() -> None:
    assert render(doc((0, 1, " One."), (1, 2, " Two.")), Format.txt) == "One.\nTwo.\n"


def test_json_carries_language_words_and_text() -> None:
    d = doc((0, 1, " Hi"))
    d.segments[0].words = [Word(start=0.1, end=0.4, word=" Hi", probability=0.9)]
    body = json.loads(render(d, Format.json))
    assert body["language"] == "en"
    assert body["text"] == "Hi"
    assert body["segments"][0]["words"][0] == {
        "start": 0.1,
        "end": 0.4,
        "word": " Hi",
        "probability": 0.9,
    }
