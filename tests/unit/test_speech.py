"""Speech windows: faster-whisper's grouping, never past one encoder input, exact seconds."""

from __future__ import annotations

import numpy as np
from faster_whisper.vad import collect_chunks

from services.splitter.chunking import SAMPLE_RATE, AudioChunk, Piece
from services.splitter.speech import (
    MAX_WINDOW_S,
    find_speech,
    in_seconds,
    stored,
    windows,
    with_speech,
)

LIMIT = MAX_WINDOW_S * SAMPLE_RATE


def random_pieces(rng: np.random.Generator, count: int, longest_s: float) -> list[Piece]:
    pieces, at = [], int(rng.integers(0, SAMPLE_RATE))
    for _ in range(count):
        at += int(rng.integers(0, 2 * SAMPLE_RATE))  # touching pieces too
        length = int(rng.integers(1, int(longest_s * SAMPLE_RATE)))
        pieces.append((at, at + length))
        at += length
    return pieces


def test_windows_group_pieces_as_collect_chunks_does() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        pieces = random_pieces(rng, int(rng.integers(1, 30)), longest_s=MAX_WINDOW_S)
        audio = rng.standard_normal(pieces[-1][1] + 10).astype(np.float32)
        spans = [{"start": s, "end": e} for s, e in pieces]
        theirs, _ = collect_chunks(audio, spans, max_duration=MAX_WINDOW_S)
        ours = [np.concatenate([audio[s:e] for s, e in w]) for w in windows(pieces)]
        assert len(ours) == len(theirs)
        for mine, reference in zip(ours, theirs, strict=True):
            assert np.array_equal(mine, reference)


def test_no_window_holds_more_than_one_encoder_input() -> None:
    rng = np.random.default_rng(11)
    pieces = [*random_pieces(rng, 20, longest_s=12), (10**8, 10**8 + 70 * SAMPLE_RATE)]
    grouped = windows(pieces)
    for window in grouped:
        assert sum(e - s for s, e in window) <= LIMIT
    assert [p for w in grouped for p in w][-3:] == [
        (10**8, 10**8 + LIMIT),
        (10**8 + LIMIT, 10**8 + 2 * LIMIT),
        (10**8 + 2 * LIMIT, 10**8 + 70 * SAMPLE_RATE),
    ]


def test_windows_keep_every_piece_in_order() -> None:
    pieces = random_pieces(np.random.default_rng(3), 40, longest_s=9)
    assert [p for w in windows(pieces) for p in w] == pieces


def test_stored_seconds_give_the_samples_back() -> None:
    pieces = random_pieces(np.random.default_rng(5), 25, longest_s=8)
    speech = in_seconds(windows(pieces))
    back = [(round(s * SAMPLE_RATE), round(e * SAMPLE_RATE)) for w in speech for s, e in w]
    assert back == pieces
    assert all(isinstance(x, float) for w in speech for p in w for x in p)


def test_no_speech_is_an_empty_list_and_no_vad_is_none() -> None:
    assert windows([]) == []
    assert stored([]) == []
    assert stored(None) is None
    part = AudioChunk(0, np.zeros(10, np.int16), [(0, 5)])
    assert list(with_speech([part])) == [(part, [[[0.0, 5 / SAMPLE_RATE]]])]


def test_silero_finds_no_speech_in_silence_or_hum() -> None:
    t = np.arange(8 * SAMPLE_RATE) / SAMPLE_RATE
    hum = (3000 * np.sin(2 * np.pi * 50 * t)).astype(np.int16)
    assert find_speech(np.zeros(8 * SAMPLE_RATE, np.int16)) == []
    assert find_speech(hum) == []
