"""Who speaks when, as plain types: no torch here, so the default install imports it.

The engine (engine.py) needs the `speakers` extra; the service, the merge and the
gateway's validation need only these types, and must not pay torch's import for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

RATE = 16_000
# More voices than this in one file is beyond what clustering tells apart reliably, and a
# bound keeps a client from asking for a clustering of thousands of "speakers".
MAX_SPEAKERS = 20

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Turn:
    """One speaker talking from `start` to `end`, in whole-file seconds."""

    start: float
    end: float
    speaker: str  # "S1", "S2", ... in order of first appearance

    def as_row(self) -> dict[str, Any]:
        """The shape stored in `Diarization.turns`."""
        return {"start": round(self.start, 3), "end": round(self.end, 3), "speaker": self.speaker}


@dataclass(frozen=True)
class SpeakerCount:
    """How many speakers to find: an `exact` count, or "auto" bounded by `min`/`max`.

    Built from a job's `speakers`/`min_speakers`/`max_speakers`; an impossible request
    raises ValueError with a message a user can act on (the gateway answers it with 422).
    """

    exact: int | None = None
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        for name in ("exact", "min", "max"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_SPEAKERS:
                raise ValueError(f"{_FIELD[name]} must be between 1 and {MAX_SPEAKERS}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min_speakers must not be greater than max_speakers")
        low, high = self.min or 1, self.max or MAX_SPEAKERS
        if self.exact is not None and not low <= self.exact <= high:
            raise ValueError("speakers must lie between min_speakers and max_speakers")

    @classmethod
    def from_job(
        cls, speakers: str | None, min_speakers: int | None = None, max_speakers: int | None = None
    ) -> SpeakerCount:
        """`speakers` as a job holds it: "auto" or a count as digits (None counts as auto)."""
        text = (speakers or "auto").strip().lower()
        if text == "auto":
            return cls(None, min_speakers, max_speakers)
        if not text.isdigit():
            raise ValueError(f'speakers must be "auto" or a number, not {speakers!r}')
        return cls(int(text), min_speakers, max_speakers)

    @property
    def lower(self) -> int:
        """The fewest speakers a result may have."""
        return self.exact or self.min or 1

    @property
    def upper(self) -> int:
        """The most speakers a result may have."""
        return self.exact or self.max or MAX_SPEAKERS


_FIELD = {"exact": "speakers", "min": "min_speakers", "max": "max_speakers"}


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
