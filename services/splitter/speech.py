"""Where the speech is: silero VAD over one buffer, and the windows the transcriber decodes.

The VAD is faster-whisper's own (its ONNX model ships in faster_whisper/assets), with
the parameters its BatchedInferencePipeline uses, and windows are grouped as that
pipeline groups its model inputs, here within one chunk. faster_whisper is imported on first use, in
the decode thread that calls `find_speech`: the import and the model's first load
take a noticeable moment and must not happen on an event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from services.splitter.chunking import SAMPLE_RATE, AudioChunk, Piece, Samples

MAX_WINDOW_S = 30  # one Whisper encoder input
MIN_SILENCE_MS = 160  # BatchedInferencePipeline's choice: a pause between sentences

Window = list[Piece]
Speech = list[list[list[float]]]  # Chunk.speech: windows of [start, end] seconds


def find_speech(samples: Samples) -> list[Piece]:
    """Speech pieces [start, end) in sample indices of `samples`, sorted, not overlapping.

    Silero starts from a fresh state at the first sample: callers hand it audio that
    begins in silence (a file's start or a cut placed in a pause).
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(max_speech_duration_s=MAX_WINDOW_S, min_silence_duration_ms=MIN_SILENCE_MS)
    audio = samples.astype(np.float32) / 32768.0
    found = get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)
    return [(int(p["start"]), int(p["end"])) for p in found if p["end"] > p["start"]]


def windows(pieces: Sequence[Piece], limit: int = MAX_WINDOW_S * SAMPLE_RATE) -> list[Window]:
    """Consecutive pieces grouped while a window's speech totals at most `limit` samples.

    The grouping of faster_whisper.vad.collect_chunks(max_duration=30): a piece that
    would overflow the current window opens the next. A piece longer than `limit`
    (VAD caps them at 30 s, but a clipped cut or other options could not promise it)
    is first cut into parts of `limit`, so no window ever exceeds one encoder input.
    """
    grouped: list[Window] = []
    current: Window = []
    total = 0
    for piece in _bounded(pieces, limit):
        length = piece[1] - piece[0]
        if current and total + length > limit:
            grouped.append(current)
            current, total = [], 0
        current.append(piece)
        total += length
    if current:
        grouped.append(current)
    return grouped


def _bounded(pieces: Sequence[Piece], limit: int) -> list[Piece]:
    parts: list[Piece] = []
    for start, end in pieces:
        parts += [(s, min(s + limit, end)) for s in range(start, end, limit)]
    return parts


def in_seconds(grouped: Sequence[Window]) -> Speech:
    """Windows as `Chunk.speech` stores them: [start, end] seconds on the chunk's clock.

    Exact sample counts over 16 000: `round(seconds * 16000)` gives the sample back.
    """
    return [[[start / SAMPLE_RATE, end / SAMPLE_RATE] for start, end in w] for w in grouped]


def stored(pieces: Sequence[Piece] | None) -> Speech | None:
    """`Chunk.speech` for a chunk's pieces; None when the job has no VAD."""
    return None if pieces is None else in_seconds(windows(pieces))


def with_speech(parts: Iterable[AudioChunk]) -> Iterator[tuple[AudioChunk, Speech | None]]:
    """Each chunk with its stored windows, built wherever the caller runs `next`."""
    for part in parts:
        yield part, stored(part.speech)
