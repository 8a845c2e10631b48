"""Where to cut: in a pause near each boundary, so no word is cut in two.

With voice activity the cut goes into the silence between speech pieces nearest the
boundary, at its quietest moment; without it (or when the search range is all
speech) at the quietest moment of the range. Pure NumPy over 16 kHz mono samples,
with the VAD passed in, so every choice can be tested on synthetic audio.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
FRAME = SAMPLE_RATE // 50  # 20 ms energy frames
SMOOTH_FRAMES = 10  # 200 ms: a pause between words, not a stop consonant inside one
# Audio held past the search range when VAD decides: it ends a piece only after 160 ms
# of silence and pads pieces by 400 ms, so a pause near the range's end is known by then.
LOOKAHEAD = SAMPLE_RATE

Samples = npt.NDArray[np.int16]
Piece = tuple[int, int]  # speech from sample `start` up to, not including, `end`
SpeechFinder = Callable[[Samples], list[Piece]]


@dataclass(frozen=True)
class AudioChunk:
    """One chunk: where it starts in the file, its samples, and its speech.

    `speech` holds the VAD's pieces in sample indices of `samples` (None without VAD).
    """

    start: int
    samples: Samples
    speech: list[Piece] | None


def find_cut(samples: Samples, target: int, search: int) -> int:
    """The sample index in [target - search, target + search] at the quietest moment."""
    return quietest(samples, max(0, target - search), min(len(samples), target + search), target)


def quietest(samples: Samples, low: int, high: int, target: int) -> int:
    """The sample index in [low, high] at the quietest moment.

    Energy is measured per 20 ms frame and smoothed over 200 ms, so the cut lands in
    the middle of a pause; among equally quiet places the one nearest `target` wins.
    """
    n_frames = (high - low) // FRAME
    if n_frames < 1:
        return min(max(target, low), high)
    frames = samples[low : low + n_frames * FRAME].astype(np.float32).reshape(n_frames, FRAME)
    energy = np.mean(frames * frames, axis=1)
    width = min(SMOOTH_FRAMES, n_frames)
    smooth = np.convolve(energy, np.ones(width) / width, mode="same")
    centres = low + np.arange(n_frames) * FRAME + FRAME // 2
    least = np.min(smooth)
    candidates = np.flatnonzero(smooth <= least * 1.0001 + 1e-3)
    best = candidates[np.argmin(np.abs(centres[candidates] - target))]
    return int(centres[best])


def silences(pieces: Sequence[Piece], low: int, high: int) -> list[Piece]:
    """The stretches of [low, high] outside every speech piece, as closed [a, b] spans.

    Two pieces that touch (the VAD splits a short pause between them) leave a span of
    zero width at their meeting point: still a pause, and a place to cut.
    """
    spans = []
    before = 0
    for start, end in [*pieces, (high, high)]:
        a, b = max(before, low), min(start, high)
        if a <= b:
            spans.append((a, b))
        before = max(before, end)
    return spans


def cut_in_silence(samples: Samples, pieces: Sequence[Piece], target: int, search: int) -> int:
    """A cut in the pause nearest `target` within the search range, at its quietest point.

    Only when the whole range is speech does the cut fall back to the quietest moment
    of the range, inside a piece.
    """
    low, high = max(0, target - search), min(len(samples), target + search)
    spans = silences(pieces, low, high)
    if not spans:
        return quietest(samples, low, high, target)
    a, b = min(spans, key=lambda span: max(span[0] - target, target - span[1], 0))
    return quietest(samples, a, b, target)


def before_cut(pieces: Sequence[Piece], cut: int) -> list[Piece]:
    """The pieces a chunk ending at `cut` keeps; one the cut crosses ends there."""
    return [(start, min(end, cut)) for start, end in pieces if start < cut]


class Chunker:
    """Turns a stream of sample blocks into chunks of about `chunk_seconds`.

    It holds at most one chunk plus the search window (and a second of look-ahead with
    VAD), whatever the file's length. With a `find` (the VAD) each decision runs it over
    the buffer from the chunk's start, where the previous cut left the audio in silence,
    so the VAD starts from a fresh state exactly there; the audio past the cut is seen
    again with the next chunk (at most the search window and the look-ahead).
    """

    def __init__(
        self,
        chunk_seconds: float,
        search_seconds: float | None = None,
        find: SpeechFinder | None = None,
    ) -> None:
        self.target = int(chunk_seconds * SAMPLE_RATE)
        search = search_seconds if search_seconds is not None else min(5.0, chunk_seconds / 4)
        self.search = int(search * SAMPLE_RATE)
        self.find = find
        self.needed = self.target + self.search + (LOOKAHEAD if find else 0)
        self._blocks: list[Samples] = []
        self._buffered = 0
        self.emitted = 0  # samples already handed out: the next chunk's start

    def feed(self, block: Samples) -> Iterator[AudioChunk]:
        """Add samples; yield every chunk now complete."""
        self._blocks.append(block)
        self._buffered += len(block)
        while self._buffered >= self.needed:
            buffer = np.concatenate(self._blocks)
            cut, speech = self._decide(buffer)
            yield self._emit(buffer[:cut], speech)
            rest = buffer[cut:]
            self._blocks, self._buffered = [rest], len(rest)

    def _decide(self, buffer: Samples) -> tuple[int, list[Piece] | None]:
        """Where this chunk ends, and its speech pieces when there is a VAD."""
        if self.find is None:
            return find_cut(buffer, self.target, self.search), None
        pieces = self.find(buffer)
        cut = cut_in_silence(buffer, pieces, self.target, self.search)
        return cut, before_cut(pieces, cut)

    def finish(self) -> Iterator[AudioChunk]:
        """The last chunk: whatever is left, all of it."""
        if self._buffered:
            buffer = np.concatenate(self._blocks)
            self._blocks, self._buffered = [], 0
            yield self._emit(buffer, None if self.find is None else self.find(buffer))

    def _emit(self, samples: Samples, speech: list[Piece] | None) -> AudioChunk:
        start = self.emitted
        self.emitted += len(samples)
        return AudioChunk(start, samples, speech)


def chunks(
    blocks: Iterable[Samples], chunk_seconds: float, find: SpeechFinder | None = None
) -> Iterator[AudioChunk]:
    """The stream's chunks, cut in the VAD's pauses when `find` is given."""
    chunker = Chunker(chunk_seconds, find=find)
    for block in blocks:
        yield from chunker.feed(block)
    yield from chunker.finish()


def split(blocks: Iterable[Samples], chunk_seconds: float) -> Iterator[tuple[int, Samples]]:
    """(start sample, samples) of each chunk, cut at quiet points, without VAD."""
    for chunk in chunks(blocks, chunk_seconds):
        yield chunk.start, chunk.samples
