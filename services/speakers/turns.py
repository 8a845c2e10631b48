"""Who speaks when: the diarizer's contract, its input checks and the turns made from
clustered subsegments. No torch here, so the default install imports it.

The engine (engine.py) needs the `speakers` extra; the service and its tests need only
these, and must not pay torch's import for them. A turn and a speaker count are
shared types (`shared.speakers.Turn`, `shared.speaker_count.SpeakerCount`): the merge
and the gateway read them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from shared.speaker_count import SpeakerCount
from shared.speakers import Turn

RATE = 16_000

Audio = npt.NDArray[np.float32]


class Diarizer(Protocol):
    """Who speaks when over one whole file.

    `audio` is 16 kHz mono float32 in [-1, 1], whole or as pieces in order (a job's
    chunks), so a long file need not be held at once. Heavy and synchronous: the service
    runs it on an executor. Returns turns in time order, without overlap.
    """

    def diarize(self, audio: Audio | Iterable[Audio], count: SpeakerCount) -> list[Turn]: ...


def pieces(audio: Audio | Iterable[Audio]) -> Iterator[npt.NDArray[np.floating[Any]]]:
    """The input's pieces, each checked to be mono float samples (not copied: a long
    file handed as one array is then taken a window at a time, see `window_samples`)."""
    items: Iterable[Any] = [audio] if isinstance(audio, np.ndarray) else audio
    for item in items:
        piece = np.asarray(item)
        if piece.ndim != 1:
            raise ValueError(f"audio must be mono (1-D), got shape {piece.shape}")
        if not np.issubdtype(piece.dtype, np.floating):
            raise ValueError(f"audio must be float samples in [-1, 1], got {piece.dtype}")
        yield piece


def window_samples(parts: Sequence[npt.NDArray[np.floating[Any]]]) -> Audio:
    """Pieces of one window as one new float32 array, checked and clipped to [-1, 1]
    (decoders overshoot 1.0 by a hair on loud peaks; clipping is what playback does)."""
    block = np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0)
    if block.size and not np.isfinite(block).all():
        raise ValueError("audio holds NaN or infinite samples")
    return np.clip(block, -1.0, 1.0).astype(np.float32, copy=False)


def label_turns(
    spans: Sequence[tuple[float, float]],
    labels: Sequence[int],
    *,
    join_gap: float = 2.0,
    min_turn: float = 0.78,
) -> list[Turn]:
    """Turns from clustered subsegments: `spans[i]` (seconds) was spoken by `labels[i]`.

    Subsegments overlap (1.5 s windows every 0.6 s): where two speakers' overlap, the
    boundary is put half-way. A speaker's turns less than `join_gap` apart become one
    (a breath is not a turn), a turn shorter than `min_turn` is dropped, and the
    turns either side of it join when they are the same speaker: a lone subsegment
    given to another voice is clustering noise far more often than a real
    interjection. Labels are then "S1", "S2"... in order of first appearance.
    """
    if len(spans) != len(labels):
        raise ValueError("one label per span")
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    raw: list[list[Any]] = []  # [start, end, label]
    for i in order:
        start, end = max(0.0, float(spans[i][0])), max(0.0, float(spans[i][1]))
        label = int(labels[i])
        if raw and start < raw[-1][1]:
            last = raw[-1]
            if label == last[2]:
                last[1] = max(last[1], end)
                continue
            middle = max(last[0], (last[1] + start) / 2)
            if end <= middle:
                continue  # wholly inside the other speaker's turn
            last[1], start = middle, middle
        if end > start:
            raw.append([start, end, label])
    return _relabel(_drop_short(_join(raw, join_gap), min_turn))


def _join(turns: list[list[Any]], gap: float) -> list[list[Any]]:
    """Neighbouring turns of one speaker less than `gap` apart, as one."""
    out: list[list[Any]] = []
    for start, end, label in turns:
        if out and out[-1][2] == label and start - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end, label])
    return out


def _drop_short(turns: list[list[Any]], min_turn: float) -> list[list[Any]]:
    """Turns shorter than `min_turn` dropped; the same speaker either side joined."""
    out = [t[:] for t in turns]
    i = 0
    while i < len(out):
        if out[i][1] - out[i][0] > min_turn or len(out) == 1:
            i += 1
            continue
        if 0 < i < len(out) - 1 and out[i - 1][2] == out[i + 1][2]:
            out[i - 1][1] = out[i + 1][1]
            del out[i + 1]
        del out[i]
        i = max(0, i - 1)
    return out


def _relabel(turns: list[list[Any]]) -> list[Turn]:
    names: dict[int, str] = {}
    result = []
    for start, end, label in turns:
        name = names.setdefault(label, f"S{len(names) + 1}")
        result.append(Turn(round(start, 3), round(end, 3), name))
    return result
