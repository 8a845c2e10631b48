"""Speakers joined to the merged transcript (shared/speakers.py): by turns and by channel."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from shared.speakers import (
    MAX_NAME_CHARS,
    Turn,
    attribute,
    join_speakers,
    merge_channels,
    name_speakers,
    parse_turns,
    speakers_of,
)
from shared.transcript import ChunkResult, Segment, TranscriptDoc, Word


def seg(*words: tuple[float, float, str], start: float | None = None) -> Segment:
    ws = [Word(start=s, end=e, word=w) for s, e, w in words]
    return Segment(
        start=ws[0].start if start is None else start,
        end=ws[-1].end,
        text="".join(w.word for w in ws),
        words=ws,
    )


TURNS = [Turn(0.0, 2.0, "S1"), Turn(2.0, 4.0, "S2"), Turn(6.0, 8.0, "S1")]


def test_a_word_takes_the_turn_overlapping_it_most() -> None:
    # 1.5-2.4 is 0.5 s in S1 and 0.4 s in S2; 1.8-2.5 is 0.2 s in S1, 0.5 s in S2.
    assert speakers_of([(1.5, 2.4), (1.8, 2.5)], TURNS) == ["S1", "S2"]


def test_a_word_in_no_turn_takes_the_nearest_and_a_tie_the_earlier() -> None:
    spans = [(4.5, 4.8), (5.5, 5.9), (4.9, 5.1), (9.0, 9.5), (-1.0, -0.5)]
    assert speakers_of(spans, TURNS) == ["S2", "S1", "S2", "S1", "S1"]


def test_a_word_of_no_length_inside_a_turn_is_that_turns() -> None:
    assert speakers_of([(3.0, 3.0), (2.0, 2.0)], TURNS) == ["S2", "S1"]


def test_overlapping_turns_and_spans_out_of_order() -> None:
    turns = [Turn(0.0, 10.0, "S1"), Turn(3.0, 5.0, "S2"), Turn(4.0, 4.5, "S3")]
    spans = [(9.0, 9.5), (3.0, 5.0), (4.0, 4.5), (0.0, 1.0)]
    assert speakers_of(spans, turns) == ["S1", "S1", "S1", "S1"]  # S1 covers all of each
    assert speakers_of([(3.0, 5.0)], turns[1:]) == ["S2"]


def test_a_segment_is_cut_where_the_speaker_changes() -> None:
    segments = [
        seg((0.2, 0.6, " Hello"), (0.7, 1.2, " there."), start=0.0),
        seg((1.4, 1.9, " How"), (2.1, 2.5, " are"), (2.6, 3.0, " you?"), (6.2, 6.6, " Fine.")),
    ]
    out = attribute(segments, TURNS)
    assert [(s.id, s.speaker, s.text) for s in out] == [
        (0, "S1", " Hello there."),
        (1, "S1", " How"),
        (2, "S2", " are you?"),
        (3, "S1", " Fine."),
    ]
    assert out[0].start == 0.0  # an uncut segment keeps its own times and text
    assert (out[1].start, out[1].end) == (1.4, 1.9)
    assert (out[2].start, out[2].end) == (2.1, 3.0)
    assert all(w.speaker == s.speaker for s in out for w in s.words)
    assert [w.word for s in out for w in s.words] == [w.word for s in segments for w in s.words]


def test_a_piece_glued_to_its_word_keeps_that_words_speaker() -> None:
    segments = [seg((1.5, 1.99, " 1"), (1.99, 2.4, ",000"), (2.5, 3.0, " people"))]
    out = attribute(segments, TURNS)
    assert [(s.speaker, s.text) for s in out] == [("S1", " 1,000"), ("S2", " people")]


def test_a_segment_without_words_is_labelled_by_its_span() -> None:
    segments = [Segment(start=2.2, end=5.0, text=" Something")]
    out = attribute(segments, TURNS)
    assert [(s.speaker, s.text, s.words) for s in out] == [("S2", " Something", [])]


def test_no_turns_change_nothing() -> None:
    segments = [seg((0.0, 1.0, " Hi"))]
    assert attribute(segments, []) == segments
    assert join_speakers([ChunkResult(start=0, end=5, segments=segments)], "voices", []) == (
        segments
    )


def test_stored_turns_are_sorted_and_malformed_ones_skipped() -> None:
    raw: list[dict[str, Any]] = [
        {"start": 5, "end": 6, "speaker": "S2"},
        {"start": 0, "end": 1, "speaker": "S1"},
        {"start": 2, "end": 1, "speaker": "S3"},  # ends before it starts
        {"start": "nan", "end": 1, "speaker": "S3"},
        {"start": 1, "speaker": "S3"},
        {"start": 1, "end": 2, "speaker": ""},
        {"start": None, "end": 2, "speaker": "S3"},
    ]
    assert parse_turns(raw) == [Turn(0.0, 1.0, "S1"), Turn(5.0, 6.0, "S2")]


def test_the_voices_route_attributes_the_merged_chunks() -> None:
    chunks = [
        ChunkResult(start=5, end=10, segments=[seg((6.2, 6.8, " later"))]),
        ChunkResult(start=0, end=5, segments=[seg((0.5, 1.0, " first"), (2.5, 3.0, " second"))]),
    ]
    turns = [{"start": t.start, "end": t.end, "speaker": t.speaker} for t in TURNS]
    out = join_speakers(chunks, "voices", turns)
    assert [(s.id, s.speaker, s.text) for s in out] == [
        (0, "S1", " first"),
        (1, "S2", " second"),
        (2, "S1", " later"),
    ]


def test_attribution_of_a_two_hour_file_is_quick() -> None:
    """20 000 words and 2 000 turns: one sweep, not words x turns."""
    rng = random.Random(7)
    turns, t = [], 0.0
    for i in range(2000):
        length = rng.uniform(0.5, 6.0)
        turns.append(Turn(t, t + length, f"S{i % 4 + 1}"))
        t += length + rng.uniform(0.0, 0.5)
    spans = sorted((x, x + 0.3) for x in (rng.uniform(0, t) for _ in range(20_000)))
    began = time.perf_counter()
    labels = speakers_of(spans, turns)
    assert time.perf_counter() - began < 2.0
    assert len(labels) == len(spans) and set(labels) == {"S1", "S2", "S3", "S4"}


def channel_chunk(
    channel: int, start: float, end: float, *words: tuple[float, float, str]
) -> ChunkResult:
    return ChunkResult(start=start, end=end, channel=channel, segments=[seg(*words)])


def test_channels_are_merged_apart_labelled_and_interleaved() -> None:
    left = [
        channel_chunk(0, 0, 10, (0.2, 1.0, " Hello"), (1.1, 2.0, " Bob.")),
        channel_chunk(0, 10, 20, (12.0, 13.0, " Bye.")),
    ]
    # The right channel talks over the left (1.5 s < 2.0 s): kept as said, not pushed on.
    right = [
        channel_chunk(1, 0, 10, (1.5, 2.5, " Hi"), (2.6, 3.0, " Ann.")),
        channel_chunk(1, 10, 20, (11.0, 11.5, " See"), (11.6, 12.5, " you.")),
    ]
    out = merge_channels([right[1], left[0], right[0], left[1]])
    assert [(s.id, s.speaker, s.text, s.start) for s in out] == [
        (0, "S1", " Hello Bob.", 0.2),
        (1, "S2", " Hi Ann.", 1.5),
        (2, "S2", " See you.", 11.0),
        (3, "S1", " Bye.", 12.0),
    ]
    assert all(w.speaker == s.speaker for s in out for w in s.words)
    assert out[1].start < out[0].end  # two voices at once


def test_the_channels_route_is_chosen_by_the_job() -> None:
    chunks = [channel_chunk(1, 0, 5, (0.0, 1.0, " right")), channel_chunk(0, 0, 5, (0.5, 1, " l"))]
    assert [s.speaker for s in join_speakers(chunks, "channels", None)] == ["S2", "S1"]
    assert [s.speaker for s in join_speakers(chunks, None, None)] == [None, None]


def doc_of(*labels: str | None) -> TranscriptDoc:
    return TranscriptDoc(
        segments=[
            Segment(id=i, start=i, end=i + 0.5, text=" x", speaker=label)
            for i, label in enumerate(labels)
        ]
    )


def test_speakers_are_listed_with_their_time_in_label_order() -> None:
    doc = doc_of("S10", "S2", "S2", None)
    assert [(s.id, s.name, s.seconds) for s in doc.speakers] == [
        ("S2", None, 1.0),
        ("S10", None, 0.5),
    ]
    assert doc_of(None).speakers == []


def test_renames_name_only_the_doc_s_labels_cleanly() -> None:
    doc = doc_of("S1", "S2")
    long = "A" * (MAX_NAME_CHARS + 20)
    named = name_speakers(doc, {"S1": "  Ana \n Lima ", "S2": "   ", "S9": "Nobody"})
    assert named.speaker_names == {"S1": "Ana Lima"}
    assert [(s.id, s.name) for s in named.speakers] == [("S1", "Ana Lima"), ("S2", None)]
    assert named.name_of("S1") == "Ana Lima" and named.name_of("S2") == "S2"
    assert doc.speaker_names == {}  # the stored doc is not changed
    assert name_speakers(doc, None) is doc
    assert len(name_speakers(doc, {"S1": long}).name_of("S1")) == MAX_NAME_CHARS


@pytest.mark.parametrize("route", ["voices", None])
def test_a_job_without_speakers_merges_as_before(route: str | None) -> None:
    chunks = [ChunkResult(start=0, end=5, segments=[seg((0.0, 1.0, " Hi"))])]
    out = join_speakers(chunks, route, None)
    assert out[0].speaker is None and "speaker" not in out[0].model_dump()
    assert "speaker" not in out[0].model_dump()["words"][0]
