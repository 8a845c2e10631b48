"""Window arithmetic: cutting a chunk's speech out, mapping times back, cutting sentences."""

from __future__ import annotations

from typing import Any

import numpy as np

from services.transcriber.windows import SAMPLE_RATE, cut_windows, sentences, to_chunk_clock
from shared.transcript import Word


def word(text: str, start: float, end: float) -> dict[str, Any]:
    return {"word": text, "start": start, "end": end, "probability": 0.9}


def test_a_window_is_its_pieces_concatenated_silence_dropped() -> None:
    audio = np.arange(10 * SAMPLE_RATE, dtype=np.float32)
    first, second = cut_windows(audio, [[[1.0, 2.0], [5.0, 5.5]], [[8.0, 9.0]]])
    assert first.duration == 1.5 and second.duration == 1.0
    assert first.audio[0] == SAMPLE_RATE and first.audio[SAMPLE_RATE] == 5 * SAMPLE_RATE
    assert first.pieces == ((1.0, 2.0), (5.0, 5.5))


def test_times_go_back_through_the_piece_each_word_lies_in() -> None:
    pieces = ((1.0, 2.0), (5.0, 6.0))
    segment = {"text": " one two", "start": 0.0, "end": 2.0}
    segment["words"] = [word(" one", 0.2, 0.6), word(" two.", 1.2, 1.8)]
    mapped = to_chunk_clock([segment], pieces)
    assert [(w.start, w.end) for s in mapped for w in s.words] == [(1.2, 1.6), (5.2, 5.8)]
    assert [s.text for s in mapped] == [" one", " two."]  # the silence between is a pause


def test_a_word_across_a_piece_boundary_stays_in_the_piece_of_its_middle() -> None:
    segment = {"text": " long", "start": 0.0, "end": 1.2}
    segment["words"] = [word(" long", 0.9, 1.3)]  # middle 1.1: the second piece
    [mapped] = to_chunk_clock([segment], ((0.0, 1.0), (3.0, 4.0)))
    assert (mapped.words[0].start, mapped.words[0].end) == (2.9, 3.3)


def test_sentences_end_at_their_punctuation_or_before_a_pause() -> None:
    words = [
        Word(start=0.0, end=0.4, word=" Hello"),
        Word(start=0.4, end=0.8, word=" there."),
        Word(start=0.9, end=1.2, word=" Next"),
        Word(start=3.0, end=3.4, word=" after"),
        Word(start=3.4, end=3.8, word=" pause?"),
    ]
    cut = sentences(words)
    assert [s.text for s in cut] == [" Hello there.", " Next", " after pause?"]
    assert [(s.start, s.end) for s in cut] == [(0.0, 0.8), (0.9, 1.2), (3.0, 3.8)]
    assert sentences([]) == []


def test_a_segment_without_words_keeps_its_text_and_no_text_no_segment() -> None:
    kept = to_chunk_clock([{"text": " hm", "start": 0.5, "end": 0.9}], ((2.0, 3.0),))
    assert [(s.text, s.start, s.end) for s in kept] == [(" hm", 2.5, 2.9)]
    assert to_chunk_clock([{"text": " ", "start": 0.0, "end": 0.1}], ((0.0, 1.0),)) == []
