"""How right a diarization is: the share of words (or of speech time) given the right
speaker once the found labels are mapped one-to-one onto the true voices.

Simpler to read than the diarization error rate and closer to what a user sees in a
transcript: each word's label is right or wrong. The mapping is the best one-to-one
assignment (Hungarian, scipy), so a label never counts for two voices; labels left
over (more found than there are) count wrong wherever they are used.

A word (or a 10 ms step of speech) goes to the found turn that covers it, or else to
the nearest found turn, as the merge gives a word to a speaker. Where the reference
has two voices at once (stereo_mix), either voice counts as right.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment

STEP_S = 0.01


class TurnLike(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def speaker(self) -> str: ...


@dataclass(frozen=True)
class SpeakerScore:
    accuracy: float  # share of words (or speech time) on the right speaker
    counted: float  # words, or seconds of reference speech
    reference_speakers: int
    found_speakers: int
    mapping: dict[str, str] = field(default_factory=dict)  # found label -> true voice

    @property
    def right_count(self) -> bool:
        return self.found_speakers == self.reference_speakers


class Timeline:
    """Turns sorted by start, for fast look-ups of who talks at a time (bisection)."""

    def __init__(self, turns: Sequence[TurnLike]) -> None:
        self.turns = sorted(turns, key=lambda t: (t.start, t.end))
        self.starts = [t.start for t in self.turns]
        self.reach = list(itertools.accumulate((t.end for t in self.turns), max))

    def covering(self, t: float) -> list[str]:
        """Every turn's speaker whose span holds `t`."""
        out = []
        j = bisect.bisect_right(self.starts, t) - 1
        while j >= 0 and self.reach[j] >= t:
            if self.turns[j].end >= t:
                out.append(self.turns[j].speaker)
            j -= 1
        return out

    def nearest(self, t: float) -> str | None:
        """The speaker of a turn covering `t`, else of the nearest turn; None if none."""
        inside = self.covering(t)
        if inside:
            return inside[-1]
        if not self.turns:
            return None
        j = bisect.bisect_right(self.starts, t)
        before = [(t - self.turns[i].end, i) for i in range(max(0, j - 3), j)]
        after = [(self.turns[j].start - t, j)] if j < len(self.turns) else []
        return self.turns[min(before + after)[1]].speaker


def speaker_at(turns: Sequence[TurnLike], t: float) -> str | None:
    """The speaker of the turn covering `t`, else of the nearest turn; None if none."""
    return Timeline(turns).nearest(t)


def voices_at(timeline: Timeline, t: float) -> frozenset[str]:
    """Every reference voice talking at `t`; the nearest one when none is."""
    inside = timeline.covering(t)
    if inside:
        return frozenset(inside)
    nearest = timeline.nearest(t)
    return frozenset() if nearest is None else frozenset({nearest})


def score_words(
    words: Sequence[tuple[float, float]],
    reference: Sequence[TurnLike],
    found: Sequence[TurnLike],
) -> SpeakerScore:
    """Words (start, end) in seconds, judged at their middle."""
    ref, hyp = Timeline(reference), Timeline(found)
    pairs = [(hyp.nearest((a + b) / 2), voices_at(ref, (a + b) / 2)) for a, b in words]
    return _score(pairs, reference, found, weight=1.0)


def score_time(
    reference: Sequence[TurnLike], found: Sequence[TurnLike], step: float = STEP_S
) -> SpeakerScore:
    """Every `step` of reference speech, judged alone (the same step of two voices
    talking at once counted once)."""
    ref, hyp = Timeline(reference), Timeline(found)
    pairs = []
    if ref.turns:
        for t in np.arange(ref.starts[0] + step / 2, ref.reach[-1], step).tolist():
            voices = ref.covering(t)
            if voices:  # reference speech; talking at once counts once
                pairs.append((hyp.nearest(t), frozenset(voices)))
    return _score(pairs, reference, found, weight=step)


def _score(
    pairs: Sequence[tuple[str | None, frozenset[str]]],
    reference: Sequence[TurnLike],
    found: Sequence[TurnLike],
    weight: float,
) -> SpeakerScore:
    true = sorted({t.speaker for t in reference})
    labels = sorted({t.speaker for t in found})
    overlap = np.zeros((len(labels), len(true)))
    for label, voices in pairs:
        if label is None:
            continue
        for voice in voices:
            overlap[labels.index(label), true.index(voice)] += 1
    rows, cols = linear_sum_assignment(overlap, maximize=True) if labels and true else ([], [])
    mapping = {labels[r]: true[c] for r, c in zip(rows, cols, strict=True)}
    right = sum(1 for label, voices in pairs if label is not None and mapping.get(label) in voices)
    accuracy = right / len(pairs) if pairs else 1.0
    return SpeakerScore(
        round(accuracy, 4), round(len(pairs) * weight, 3), len(true), len(labels), mapping
    )
