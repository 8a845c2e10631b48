"""Whether a stereo file's two channels are two speakers or one mix, decided from the audio.

Interviews, phone calls and two-microphone recordings put each voice on its own
channel: one channel is much louder than the other whenever someone speaks, and the
channels' samples are nearly uncorrelated. Stereo music and most stereo speech are
one mix placed on both channels: the channels are near copies, and neither dominates.
Only the opening minutes are read: a recording's set-up does not change midway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from services.splitter.chunking import FRAME, Samples

LISTEN_S = 600.0  # the opening the decision reads
DOMINANT_DB = 10.0  # one channel this much louder than the other: only its speaker talks
ACTIVE_DB = 40.0  # frames within this of the loudest hold speech
MIN_DOMINANT = 0.05  # each channel leads in at least this share of the active frames
MAX_CORRELATION = 0.5  # above it, the channels carry the same sound


@dataclass
class ChannelStats:
    """Running sums over (n, 2) blocks: the correlation of the channels and, per 20 ms
    frame, each channel's energy in dB."""

    n: int = 0
    sums: np.ndarray | None = None
    frame_db: list[np.ndarray] | None = None

    def add(self, pairs: Samples) -> None:
        x = pairs.astype(np.float64)
        left, right = x[:, 0], x[:, 1]
        moments = np.array(
            [
                left.sum(),
                right.sum(),
                (left * left).sum(),
                (right * right).sum(),
                (left * right).sum(),
            ]
        )
        self.sums = moments if self.sums is None else self.sums + moments
        self.n += len(x)
        frames = len(x) // FRAME
        if frames:
            energy = (x[: frames * FRAME].reshape(frames, FRAME, 2) ** 2).mean(axis=1)
            self.frame_db = [*(self.frame_db or []), 10 * np.log10(energy + 1.0)]

    def correlation(self) -> float:
        if self.sums is None or self.n < 2:
            return 1.0
        sl, sr, sll, srr, slr = self.sums / self.n
        var_l, var_r = sll - sl * sl, srr - sr * sr
        if var_l <= 0 or var_r <= 0:
            return 1.0  # a silent channel: nothing to tell apart
        return float((slr - sl * sr) / np.sqrt(var_l * var_r))

    def dominance(self) -> tuple[float, float]:
        """The share of speech frames in which the left, and the right, channel leads."""
        if not self.frame_db:
            return 0.0, 0.0
        db = np.concatenate(self.frame_db)
        loudest = db.max(axis=1)
        active = loudest > loudest.max() - ACTIVE_DB
        if not active.any():
            return 0.0, 0.0
        difference = db[active, 0] - db[active, 1]
        return float((difference > DOMINANT_DB).mean()), float((difference < -DOMINANT_DB).mean())


def distinct_voices(blocks: Iterable[Samples]) -> bool:
    """True when the two channels carry different voices rather than one mix."""
    stats = ChannelStats()
    for block in blocks:
        stats.add(block)
    left, right = stats.dominance()
    return (
        abs(stats.correlation()) < MAX_CORRELATION
        and left >= MIN_DOMINANT
        and right >= MIN_DOMINANT
    )
