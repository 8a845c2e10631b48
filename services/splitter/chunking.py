"""Where to cut: the quietest point near each boundary, so no word is cut in two.

Pure NumPy over 16 kHz mono samples, so the choice can be tested on synthetic audio.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
FRAME = SAMPLE_RATE // 50  # 20 ms energy frames
SMOOTH_FRAMES = 10  # 200 ms: a pause between words, not a stop consonant inside one

Samples = npt.NDArray[np.int16]


def find_cut(samples: Samples, target: int, search: int) -> int:
    """The sample index in [target - search, target + search] at the quietest moment.

    Energy is measured per 20 ms frame and smoothed over 200 ms, so the cut lands in
    the middle of a pause; among equally quiet places the one nearest `target` wins.
    """
    low = max(0, target - search)
    high = min(len(samples), target + search)
    n_frames = (high - low) // FRAME
    if n_frames < 1:
        return min(target, len(samples))
    frames = samples[low : low + n_frames * FRAME].astype(np.float32).reshape(n_frames, FRAME)
    energy = np.mean(frames * frames, axis=1)
    width = min(SMOOTH_FRAMES, n_frames)
    smooth = np.convolve(energy, np.ones(width) / width, mode="same")
    centres = low + np.arange(n_frames) * FRAME + FRAME // 2
    quietest = np.min(smooth)
    candidates = np.flatnonzero(smooth <= quietest * 1.0001 + 1e-3)
    best = candidates[np.argmin(np.abs(centres[candidates] - target))]
    return int(centres[best])


class Chunker:
    """Turns a stream of sample blocks into chunks of about `chunk_seconds`.

    It holds at most one chunk plus the search window, whatever the file's length.
    """

    def __init__(self, chunk_seconds: float, search_seconds: float | None = None) -> None:
        self.target = int(chunk_seconds * SAMPLE_RATE)
        search = search_seconds if search_seconds is not None else min(5.0, chunk_seconds / 4)
        self.search = int(search * SAMPLE_RATE)
        self._blocks: list[Samples] = []
        self._buffered = 0
        self.emitted = 0  # samples already handed out: the next chunk's start

    def feed(self, block: Samples) -> Iterator[tuple[int, Samples]]:
        """Add samples; yield (start sample, chunk) for every chunk now complete."""
        self._blocks.append(block)
        self._buffered += len(block)
        while self._buffered >= self.target + self.search:
            buffer = np.concatenate(self._blocks)
            cut = find_cut(buffer, self.target, self.search)
            yield self._emit(buffer[:cut])
            rest = buffer[cut:]
            self._blocks, self._buffered = [rest], len(rest)

    def finish(self) -> Iterator[tuple[int, Samples]]:
        if self._buffered:
            buffer = np.concatenate(self._blocks)
            self._blocks, self._buffered = [], 0
            yield self._emit(buffer)

    def _emit(self, chunk: Samples) -> tuple[int, Samples]:
        start = self.emitted
        self.emitted += len(chunk)
        return start, chunk


def split(blocks: Iterable[Samples], chunk_seconds: float) -> Iterator[tuple[int, Samples]]:
    chunker = Chunker(chunk_seconds)
    for block in blocks:
        yield from chunker.feed(block)
    yield from chunker.finish()
