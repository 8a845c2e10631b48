from __future__ import annotations

import numpy as np

from services.splitter.chunking import SAMPLE_RATE, Chunker, find_cut, split


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
