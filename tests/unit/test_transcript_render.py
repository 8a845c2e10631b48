from __future__ import annotations

import json

import pytest

from services.gateway.openai_format import ResponseFormat, respond, verbose
from shared.speakers import name_speakers
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


def spoken(names: dict[str, str] | None = None) -> TranscriptDoc:
    """Two speakers, the second talking over the first for a moment."""

    def words(speaker: str, *ws: tuple[float, float, str]) -> list[Word]:
        return [Word(start=s, end=e, word=w, speaker=speaker) for s, e, w in ws]

    segments = [
        Segment(
            id=0,
            start=0,
            end=2,
            text=" Hello there.",
            speaker="S1",
            words=words("S1", (0, 1, " Hello"), (1, 2, " there.")),
        ),
        Segment(
            id=1,
            start=1.5,
            end=3,
            text=" Hi <you>.",
            speaker="S2",
            words=words("S2", (1.5, 2.2, " Hi"), (2.3, 3, " <you>.")),
        ),
        Segment(id=2, start=4, end=4.5, text=" Bye.", speaker="S1"),
    ]
    doc = TranscriptDoc(language="en", duration=5.0, segments=segments)
    return name_speakers(doc, names)


def test_without_speakers_no_format_mentions_them() -> None:
    plain = doc((0.0, 1.5, " Hello there."))
    for fmt in Format:
        assert "speaker" not in render(plain, fmt).lower() or fmt == Format.diarized_json
    assert "<v " not in render(plain, Format.vtt)
    assert "S1" not in render(plain, Format.srt) and "S1" not in render(plain, Format.txt)


def test_txt_and_tsv_show_the_label_or_the_name() -> None:
    assert render(spoken(), Format.txt) == "S1: Hello there.\nS2: Hi <you>.\nS1: Bye.\n"
    assert render(spoken({"S2": "Bo\tb"}), Format.tsv) == (
        "start\tend\ttext\tspeaker\n"
        "0\t2000\tHello there.\tS1\n"
        "1500\t3000\tHi <you>.\tBo b\n"
        "4000\t4500\tBye.\tS1\n"
    )


def test_json_lists_the_speakers_and_keeps_the_labels_on_segments() -> None:
    body = json.loads(render(spoken({"S1": "Ana"}), Format.json))
    assert body["speakers"] == [
        {"id": "S1", "name": "Ana", "seconds": 2.5},
        {"id": "S2", "name": None, "seconds": 1.5},
    ]
    assert [s["speaker"] for s in body["segments"]] == ["S1", "S2", "S1"]
    assert body["segments"][1]["words"][0]["speaker"] == "S2"
    assert "speaker_names" not in body
    assert "speakers" not in json.loads(render(doc((0, 1, " Hi")), Format.json))


def test_vtt_opens_each_speakers_cue_with_a_voice_tag() -> None:
    out = render(spoken({"S2": "Bo <b> & c"}), Format.vtt)
    assert out == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.000\n<v S1>Hello there.\n\n"
        "00:00:01.500 --> 00:00:03.000\n<v Bo &lt;b&gt; &amp; c>Hi &lt;you&gt;.\n\n"
        "00:00:04.000 --> 00:00:05.000\n<v S1>Bye.\n"
    )


def test_srt_prefixes_the_label_or_the_name() -> None:
    out = render(spoken({"S1": "Ana"}), Format.srt)
    assert out == (
        "1\n00:00:00,000 --> 00:00:02,000\nAna: Hello there.\n\n"
        "2\n00:00:01,500 --> 00:00:03,000\nS2: Hi <you>.\n\n"
        "3\n00:00:04,000 --> 00:00:05,000\nAna: Bye.\n"
    )


def test_diarized_json_follows_openai_s_shape() -> None:
    body = json.loads(render(spoken({"S2": "Bob"}), Format.diarized_json))
    assert body == {
        "task": "transcribe",
        "duration": 5.0,
        "text": "Hello there. Hi <you>. Bye.",
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": "seg_0",
                "start": 0.0,
                "end": 2.0,
                "text": " Hello there.",
                "speaker": "S1",
            },
            {
                "type": "transcript.text.segment",
                "id": "seg_1",
                "start": 1.5,
                "end": 3.0,
                "text": " Hi <you>.",
                "speaker": "Bob",
            },
            {
                "type": "transcript.text.segment",
                "id": "seg_2",
                "start": 4.0,
                "end": 4.5,
                "text": " Bye.",
                "speaker": "S1",
            },
        ],
        "usage": {"type": "duration", "seconds": 5.0},
    }
    one = json.loads(render(doc((0, 1, " Hi"), (1, 2, "  ")), Format.diarized_json))
    assert [(s["id"], s["speaker"]) for s in one["segments"]] == [("seg_0", "S1")]


def test_openai_formats_carry_the_speaker() -> None:
    named = spoken({"S1": "Ana"})
    body = verbose(named, "transcribe", words=True, segments=True)
    segments, words = body["segments"], body["words"]
    assert isinstance(segments, list) and isinstance(words, list)
    assert [s["speaker"] for s in segments] == ["Ana", "S2", "Ana"]
    assert [w["speaker"] for w in words] == ["Ana", "Ana", "S2", "S2"]
    plain = verbose(doc((0, 1, " Hi")), "transcribe", words=True, segments=True)
    assert "speaker" not in json.dumps(plain)
    response = respond(named, ResponseFormat.diarized_json, "transcribe", set())
    assert json.loads(bytes(response.body))["segments"][0]["speaker"] == "Ana"
    assert response.media_type == "application/json"


def test_the_official_openai_client_reads_diarized_json_and_verbose_json() -> None:
    """The SDK's own models (pydantic), not our reading of the docs, judge the shape."""
    diarized_module = pytest.importorskip("openai.types.audio.transcription_diarized")
    from openai.types.audio import TranscriptionVerbose

    body = json.loads(render(spoken({"S1": "Ana"}), Format.diarized_json))
    parsed = diarized_module.TranscriptionDiarized.model_validate(body)
    assert [s.speaker for s in parsed.segments] == ["Ana", "S2", "Ana"]
    assert parsed.usage is not None and parsed.usage.type == "duration"
    verbose_body = verbose(spoken(), "transcribe", words=True, segments=True)
    assert TranscriptionVerbose.model_validate(verbose_body).segments is not None
