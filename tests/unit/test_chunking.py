from __future__ import annotations

import numpy as np

from services.splitter.chunking import (
    LOOKAHEAD,
    SAMPLE_RATE,
    Chunker,
    Piece,
    Samples,
    chunks,
    cut_in_silence,
    find_cut,
    silences,
    split,
)


def noise(seconds: float, seed: int = 0, level: int = 8000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-level, level, int(seconds * SAMPLE_RATE), dtype=np.int16)


def test_cut_lands_in_the_silence_near_the_boundary() -> None:
    # Speech-like noise with a 0.4 s pause from 11.3 s to 11.7 s; target 10 s, search 3 s.
    audio = noise(20)
    audio[int(11.3 * SAMPLE_RATE) : int(11.7 * SAMPLE_RATE)] = 0
    cut = find_cut(audio, 10 * SAMPLE_RATE, 3 * SAMPLE_RATE)
    assert 11.3 * SAMPLE_RATE < cut < 11.7 * SAMPLE_RATE


def test_the_quietest_place_wins_over_a_merely_quieter_one() -> None:
    audio = noise(20)
    audio[int(8.5 * SAMPLE_RATE) : int(9.0 * SAMPLE_RATE)] //= 4  # softer speech
    audio[int(11.0 * SAMPLE_RATE) : int(11.5 * SAMPLE_RATE)] = 0  # a real pause
    cut = find_cut(audio, 10 * SAMPLE_RATE, 3 * SAMPLE_RATE)
    assert 11.0 * SAMPLE_RATE < cut < 11.5 * SAMPLE_RATE


def test_a_cut_in_flat_silence_stays_at_the_target() -> None:
    audio = np.zeros(20 * SAMPLE_RATE, dtype=np.int16)
    cut = find_cut(audio, 10 * SAMPLE_RATE, 3 * SAMPLE_RATE)
    assert abs(cut - 10 * SAMPLE_RATE) <= SAMPLE_RATE // 50


def test_chunks_cover_the_stream_exactly_once() -> None:
    audio = noise(95, seed=3)
    for start in range(5, 95, 7):  # pauses every 7 s
        audio[start * SAMPLE_RATE : start * SAMPLE_RATE + SAMPLE_RATE // 3] = 0
    blocks = np.array_split(audio, 500)
    chunks = list(split(blocks, chunk_seconds=20))
    starts = [start for start, _ in chunks]
    joined = np.concatenate([c for _, c in chunks])
    assert np.array_equal(joined, audio)
    assert starts == list(np.cumsum([0] + [len(c) for _, c in chunks[:-1]]))
    for _, chunk in chunks[:-1]:
        assert 15 * SAMPLE_RATE <= len(chunk) <= 25 * SAMPLE_RATE


def test_chunker_holds_at_most_one_chunk_and_its_window() -> None:
    chunker = Chunker(chunk_seconds=10)
    most = 0
    for block in np.array_split(noise(120, seed=5), 1000):
        list(chunker.feed(block))
        most = max(most, chunker._buffered)
    assert most <= chunker.target + chunker.search + 2 * SAMPLE_RATE


def test_short_audio_is_one_chunk() -> None:
    chunks = list(split([noise(3)], chunk_seconds=60))
    assert len(chunks) == 1
    assert chunks[0][0] == 0


def seconds(*spans: tuple[float, float]) -> list[Piece]:
    return [(int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)) for a, b in spans]


def inside(cut: int, pieces: list[Piece]) -> bool:
    return any(start < cut < end for start, end in pieces)


def test_silences_are_the_gaps_in_range_touching_pieces_leave_a_point() -> None:
    pieces = [(0, 100), (150, 300), (300, 400), (450, 900)]
    assert silences(pieces, 120, 800) == [(120, 150), (300, 300), (400, 450)]
    assert silences(pieces, 500, 800) == []
    assert silences(pieces[:2], 200, 1000) == [(300, 1000)]


def test_the_cut_goes_into_the_pause_nearest_the_target() -> None:
    # Speech-like noise all through; the VAD says pauses at 8.6-8.9 s and 11.6-12.2 s.
    audio = noise(20)
    pieces = seconds((0.3, 8.6), (8.9, 11.6), (12.2, 20))
    cut = cut_in_silence(audio, pieces, 10 * SAMPLE_RATE, 3 * SAMPLE_RATE)
    assert 8.6 * SAMPLE_RATE <= cut <= 8.9 * SAMPLE_RATE


def test_a_quiet_moment_inside_speech_loses_to_the_pause() -> None:
    # A soft spot (a held breath, a stop consonant) in speech beside a pause with hum.
    audio = noise(20)
    audio[int(9.8 * SAMPLE_RATE) : int(10.2 * SAMPLE_RATE)] = 0
    audio[int(11.5 * SAMPLE_RATE) : int(12.0 * SAMPLE_RATE)] //= 8
    pieces = seconds((0.2, 11.5), (12.0, 20))
    assert (
        9.8 * SAMPLE_RATE < find_cut(audio, 10 * SAMPLE_RATE, 3 * SAMPLE_RATE) < 10.2 * SAMPLE_RATE
    )
    cut = cut_in_silence(audio, pieces, 10 * SAMPLE_RATE, 3 * SAMPLE_RATE)
    assert 11.5 * SAMPLE_RATE <= cut <= 12.0 * SAMPLE_RATE


def test_all_speech_in_range_falls_back_to_the_quietest_moment() -> None:
    audio = noise(20)
    audio[int(11.3 * SAMPLE_RATE) : int(11.7 * SAMPLE_RATE)] = 0
    pieces = seconds((0, 20))
    target, search = 10 * SAMPLE_RATE, 3 * SAMPLE_RATE
    assert cut_in_silence(audio, pieces, target, search) == find_cut(audio, target, search)


def test_a_cut_never_lands_inside_speech_when_the_range_has_a_pause() -> None:
    rng = np.random.default_rng(17)
    audio = noise(40, seed=2)
    target, search = 20 * SAMPLE_RATE, 4 * SAMPLE_RATE
    for _ in range(300):
        edges = np.sort(
            rng.choice(40 * SAMPLE_RATE, size=2 * int(rng.integers(1, 12)), replace=False)
        )
        pieces = [(int(a), int(b)) for a, b in edges.reshape(-1, 2)]
        if rng.random() < 0.3:  # make two of them touch
            i = int(rng.integers(0, len(pieces)))
            if i + 1 < len(pieces):
                pieces[i] = (pieces[i][0], pieces[i + 1][0])
        cut = cut_in_silence(audio, pieces, target, search)
        assert target - search <= cut <= target + search
        if silences(pieces, target - search, target + search):
            assert not inside(cut, pieces)


class Speech:
    """A stand-in VAD that knows where a synthetic file's speech is, on the file's clock."""

    def __init__(self, pieces: list[Piece]) -> None:
        self.pieces = pieces
        self.chunker: Chunker | None = None
        self.seen = 0
        self.starts: list[int] = []

    def __call__(self, buffer: Samples) -> list[Piece]:
        assert self.chunker is not None
        offset = self.chunker.emitted
        self.seen += len(buffer)
        self.starts.append(offset)
        clipped = [(max(s - offset, 0), min(e - offset, len(buffer))) for s, e in self.pieces]
        return [(s, e) for s, e in clipped if s < e]


def test_chunks_are_cut_between_speech_pieces_and_carry_their_own() -> None:
    audio = noise(200, seed=9)
    rng = np.random.default_rng(4)
    pieces, at = [], 0
    while at < 195 * SAMPLE_RATE:  # sentences of 2-9 s, pauses of 0.2-1 s
        length, pause = rng.integers(2, 9) * SAMPLE_RATE, int(rng.uniform(0.2, 1) * SAMPLE_RATE)
        pieces.append((at, int(at + length)))
        at += int(length) + pause
    vad = Speech(pieces)
    chunker = Chunker(chunk_seconds=20, find=vad)
    vad.chunker = chunker
    blocks = np.array_split(audio, 700)
    parts = [c for block in blocks for c in chunker.feed(block)] + list(chunker.finish())
    assert np.array_equal(np.concatenate([p.samples for p in parts]), audio)
    assert vad.starts == [p.start for p in parts]  # the VAD restarts at each cut
    for part in parts[:-1]:
        assert not inside(part.start + len(part.samples), pieces)
        assert 15 * SAMPLE_RATE <= len(part.samples) <= 25 * SAMPLE_RATE
    found = [(p.start + s, p.start + e) for p in parts for s, e in p.speech or []]
    assert found == pieces[: len(found)] and found[-1][1] == min(pieces[-1][1], len(audio))
    # Each sample is VADed about once: the re-seen part is the search window and look-ahead.
    assert vad.seen <= len(audio) + len(parts) * (2 * chunker.search + LOOKAHEAD + SAMPLE_RATE)


def test_speech_through_a_whole_range_is_split_at_the_cut() -> None:
    audio = noise(50, seed=6)
    vad = Speech([(0, len(audio))])
    chunker = Chunker(chunk_seconds=20, find=vad)
    vad.chunker = chunker
    parts = list(chunker.feed(audio)) + list(chunker.finish())
    assert len(parts) == 3
    assert [p.speech for p in parts] == [[(0, len(p.samples))] for p in parts]


def test_without_vad_chunks_carry_no_speech_and_the_same_cuts() -> None:
    audio = noise(95, seed=3)
    blocks = np.array_split(audio, 300)
    plain = list(chunks(blocks, chunk_seconds=20))
    assert all(p.speech is None for p in plain)
    assert [(p.start, len(p.samples)) for p in plain] == [
        (s, len(c)) for s, c in split(blocks, chunk_seconds=20)
    ]


def test_chunker_with_vad_holds_one_chunk_its_window_and_a_second() -> None:
    chunker = Chunker(chunk_seconds=10, find=lambda buffer: [])
    most = 0
    for block in np.array_split(noise(120, seed=5), 1000):
        list(chunker.feed(block))
        most = max(most, chunker._buffered)
    assert most <= chunker.target + chunker.search + LOOKAHEAD + SAMPLE_RATE


def test_a_silent_stream_gives_chunks_without_speech() -> None:
    parts = list(chunks([np.zeros(50 * SAMPLE_RATE, np.int16)], 20, find=lambda buffer: []))
    assert len(parts) == 3
    assert all(p.speech == [] for p in parts)
