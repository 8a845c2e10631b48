"""Which recordings go into each bench file, in which order, with which pauses.

Pure: a plan names recordings by index and knows only their lengths, so the shape of
the long file and of every batch file is decided (and unit-tested) before any audio is
decoded. Orders come from a seeded shuffle, so each file differs and every run of the
bench builds the same files.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

GAP_S = (0.4, 1.2)  # a short pause after each recording: where the splitter can cut
SLACK_S = 5.0  # a file ends within this of the length asked for


@dataclass(frozen=True)
class Piece:
    """One recording (by index) followed by `gap_s` of silence."""

    recording: int
    gap_s: float


@dataclass(frozen=True)
class Plan:
    name: str
    pieces: tuple[Piece, ...]

    def seconds(self, lengths: Sequence[float]) -> float:
        return sum(lengths[p.recording] + p.gap_s for p in self.pieces)

    def reference(self, texts: Sequence[str]) -> str:
        """The reference text: each recording's text in the order it is heard."""
        return " ".join(texts[p.recording] for p in self.pieces)


def _shuffled(count: int, rng: random.Random) -> Iterator[int]:
    """Every recording once per round, each round in a new order."""
    while True:
        order = list(range(count))
        rng.shuffle(order)
        yield from order


def fill(name: str, lengths: Sequence[float], seconds: float, seed: str) -> Plan:
    """Recordings in shuffled rounds until about `seconds` (within SLACK_S).

    A recording that would overshoot the end by more than SLACK_S is passed over for a
    shorter one; the shortest recording must be under 2 * SLACK_S for that to converge.
    """
    if not lengths or min(lengths) + GAP_S[1] >= 2 * SLACK_S:
        raise ValueError("fill needs a recording shorter than 2 * SLACK_S")
    rng = random.Random(seed)
    pieces: list[Piece] = []
    total = 0.0
    for index in _shuffled(len(lengths), rng):
        if total >= seconds - SLACK_S:
            break
        gap = round(rng.uniform(*GAP_S), 2)
        if total + lengths[index] + gap > seconds + SLACK_S:
            continue
        pieces.append(Piece(index, gap))
        total += lengths[index] + gap
    return Plan(name, tuple(pieces))


def long_file(lengths: Sequence[float], seconds: float) -> Plan:
    return fill("long", lengths, seconds, seed="long")


def clip(recording: int) -> Plan:
    """One recording alone: the short request."""
    return Plan("clip", (Piece(recording, 0.0),))


def batch(lengths: Sequence[float], count: int, seconds: float) -> list[Plan]:
    """`count` files of about `seconds`, each from its own seed."""
    return [fill(f"batch-{i:03d}", lengths, seconds, seed=f"batch-{i}") for i in range(count)]
