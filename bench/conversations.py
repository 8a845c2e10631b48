"""Conversations with known turns, assembled from the real recordings in ../shared/media.

Diarization is measured on these (bench/speaker_score.py, tests/integration/
test_diarizer.py). Real recordings only: synthesized voices are far easier to tell
apart than people, and would flatter the engine.

- `four_voices_a`, `four_voices_b`: JFK, the Harvard-list reader, the reader of the
  MIT licence (the English half of multilingual.mp3) and the hotwords speaker, taking
  turns in two different orders (14 turns each, about 45 s).
- `four_voices_video`: the turns of `four_voices_b` again, in another order, as an MP4
  with an H.264 video track and AAC audio (PyAV), as an upload would be.
- `harvard_shuffled`, `licence_shuffled`: one recording cut at its pauses and put back
  in another order. The recordings above differ in recording chain (telephone 8 kHz,
  44.1 kHz broadcast, MP3) as well as voice; these keep the chain and the voice, so one
  voice must come out as ONE speaker, not one per piece.
- `stereo_mix`: stereo_diarization.wav mixed down to mono: two voices, talking over
  each other for about 2 s (its reference turns overlap).

Each recording is cut near given times, at the quietest 10 ms within a quarter second
(so no word is cut), and each turn's reference span is the piece's own speech: the
frames within 30 dB of its loudest. Everything is deterministic: the same files and
turns come out every time, written under the folder the caller gives.
"""

from __future__ import annotations

import itertools
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from bench.media import SHARED_MEDIA, write_mp4

RATE = 16_000
Samples = npt.NDArray[np.float32]

# name -> (file, cut times in seconds, first and last included). Times chosen from the
# recordings' pauses; each is moved to the quietest point near it.
SOURCES: dict[str, tuple[str, tuple[float, ...]]] = {
    "jfk": ("jfk.flac", (0.0, 3.05, 4.85, 7.9, 11.0)),
    "harvard": (
        "harvard_list72_8k.wav",
        (0.0, 4.25, 7.25, 10.5, 14.5, 17.4, 20.8, 24.6, 28.8, 31.9, 35.5),
    ),
    # The English half only: the German half is the same text read again, and a language
    # change is not a speaker change this measure should count.
    "licence": ("multilingual.mp3", (0.0, 1.6, 5.0, 8.9, 11.3, 14.0, 17.9, 21.1, 25.6, 29.1)),
    "hotwords": ("hotwords.mp3", (0.0, 2.0, 4.0)),
}
GAPS = (0.5, 0.8, 0.35, 1.0, 0.6, 0.45)  # silence between turns, cycled
SNAP_S = 0.25
FRAME = RATE // 100  # 10 ms
SPEECH_DB = 30.0  # a frame is speech when within this of the piece's loudest frames

Piece = tuple[str, int]  # (source name, index of the piece)

FOUR_A: tuple[Piece, ...] = (
    ("jfk", 0), ("harvard", 0), ("licence", 1), ("hotwords", 0), ("harvard", 1),
    ("jfk", 1), ("licence", 2), ("harvard", 2), ("jfk", 2), ("licence", 3),
    ("hotwords", 1), ("harvard", 3), ("jfk", 3), ("licence", 4),
)  # fmt: skip
FOUR_B: tuple[Piece, ...] = (
    ("harvard", 4), ("licence", 5), ("hotwords", 0), ("jfk", 0), ("harvard", 5),
    ("licence", 6), ("jfk", 1), ("harvard", 6), ("hotwords", 1), ("licence", 7),
    ("jfk", 2), ("harvard", 7), ("jfk", 3), ("licence", 8),
)  # fmt: skip
FOUR_VIDEO: tuple[Piece, ...] = (
    ("licence", 5), ("jfk", 3), ("harvard", 7), ("hotwords", 1), ("licence", 8),
    ("harvard", 4), ("jfk", 1), ("licence", 6), ("hotwords", 0), ("harvard", 5),
    ("jfk", 0), ("licence", 7), ("harvard", 6), ("jfk", 2),
)  # fmt: skip
HARVARD_ORDER = (6, 2, 9, 0, 4, 7, 1, 8, 3, 5)
LICENCE_ORDER = (5, 1, 7, 3, 8, 0, 6, 2, 4)


@dataclass(frozen=True)
class RefTurn:
    """A reference turn: `speaker` (a voice's name) talks from `start` to `end` (s)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class Conversation:
    name: str
    path: Path
    turns: list[RefTurn]  # in time order; may overlap (stereo_mix)
    seconds: float

    @property
    def voices(self) -> int:
        return len({t.speaker for t in self.turns})


class MediaMissing(FileNotFoundError):
    """The recordings are not there: callers skip (tests) or stop with this message."""


def decode(path: Path, channel: int | None = None) -> Samples:
    """A file's first audio track as 16 kHz float32: mono, or one `channel` of stereo."""
    layout = "mono" if channel is None else "stereo"
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=RATE)
        frames = [g for f in container.decode(audio=0) for g in resampler.resample(f)]
        frames += resampler.resample(None)
    planes = np.concatenate([f.to_ndarray() for f in frames], axis=1).astype(np.float32)
    return np.ascontiguousarray(planes[0 if channel is None else channel])


def speech_span(samples: Samples) -> tuple[float, float]:
    """First and last 10 ms frame within SPEECH_DB of the loudest (95th percentile)."""
    usable = len(samples) // FRAME * FRAME
    if usable == 0:
        return 0.0, len(samples) / RATE
    frames = samples[:usable].reshape(-1, FRAME).astype(np.float64)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(level > np.percentile(level, 95) - SPEECH_DB)
    return float(loud[0] * FRAME / RATE), float((loud[-1] + 1) * FRAME / RATE)


def quietest(samples: Samples, near_s: float) -> int:
    """The start of the quietest 10 ms frame within SNAP_S of `near_s`, in samples."""
    if near_s <= 0 or near_s * RATE >= len(samples):
        return int(np.clip(round(near_s * RATE), 0, len(samples)))
    lo = max(0, int((near_s - SNAP_S) * RATE))
    hi = min(len(samples) - FRAME, int((near_s + SNAP_S) * RATE))
    starts = np.arange(lo, hi, FRAME // 2)
    energy = [float(np.square(samples[s : s + FRAME], dtype=np.float64).sum()) for s in starts]
    return int(starts[int(np.argmin(energy))]) + FRAME // 2


class Sources:
    """Each recording decoded once and cut into its pieces."""

    def __init__(self, folder: Path = SHARED_MEDIA) -> None:
        files = [f for f, _ in SOURCES.values()] + ["stereo_diarization.wav"]
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise MediaMissing(f"no {', '.join(missing)} in {folder} (see SOURCES.md there)")
        self.folder = folder
        self.pieces: dict[str, list[Samples]] = {}
        for name, (file, times) in SOURCES.items():
            audio = decode(folder / file)
            cuts = [quietest(audio, t) for t in times]
            self.pieces[name] = [audio[a:b] for a, b in itertools.pairwise(cuts)]

    def arrange(self, order: Sequence[Piece], gap_offset: int = 0) -> tuple[Samples, list[RefTurn]]:
        """The pieces one after another with pauses between, and their reference turns."""
        parts: list[Samples] = []
        turns: list[RefTurn] = []
        at = 0
        for i, (name, index) in enumerate(order):
            piece = self.pieces[name][index]
            start, end = speech_span(piece)
            turns.append(RefTurn(round(at / RATE + start, 3), round(at / RATE + end, 3), name))
            gap = np.zeros(int(GAPS[(i + gap_offset) % len(GAPS)] * RATE), np.float32)
            parts += [piece, gap]
            at += len(piece) + len(gap)
        return np.concatenate(parts), turns

    def stereo_mix(self) -> tuple[Samples, list[RefTurn]]:
        """stereo_diarization.wav's two channels averaged, each channel's speech a turn."""
        path = self.folder / "stereo_diarization.wav"
        left, right = decode(path, 0), decode(path, 1)
        turns = []
        for side, channel in (("left", left), ("right", right)):
            start, end = speech_span(channel)
            turns.append(RefTurn(round(start, 3), round(end, 3), side))
        return (0.5 * (left + right)).astype(np.float32), sorted(turns, key=lambda t: t.start)

    def rounds(self, seconds: float) -> Iterator[tuple[Samples, list[RefTurn]]]:
        """About `seconds` of the four voices, a conversation's length at a time: each
        round takes the 4-voice turns in a rotated order, so orders and neighbours vary."""
        orders = (FOUR_A, FOUR_B, FOUR_VIDEO)
        done, n = 0.0, 0
        while done < seconds:
            order = orders[n % len(orders)]
            shift = (n // len(orders)) % len(order)
            audio, turns = self.arrange(order[shift:] + order[:shift], gap_offset=n)
            yield audio, turns
            done += len(audio) / RATE
            n += 1


def write_wav(path: Path, samples: Samples) -> None:
    """16 kHz mono 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())


def assemble(folder: Path, media: Path = SHARED_MEDIA) -> dict[str, Conversation]:
    """Every conversation written into `folder` (WAV, and one MP4 with video), by name."""
    sources = Sources(media)
    folder.mkdir(parents=True, exist_ok=True)
    built: dict[str, tuple[Samples, list[RefTurn]]] = {
        "four_voices_a": sources.arrange(FOUR_A),
        "four_voices_b": sources.arrange(FOUR_B, gap_offset=3),
        "four_voices_video": sources.arrange(FOUR_VIDEO, gap_offset=1),
        "harvard_shuffled": sources.arrange([("harvard", i) for i in HARVARD_ORDER]),
        "licence_shuffled": sources.arrange([("licence", i) for i in LICENCE_ORDER], 2),
        "stereo_mix": sources.stereo_mix(),
    }
    out: dict[str, Conversation] = {}
    for name, (samples, turns) in built.items():
        if name == "four_voices_video":
            path = folder / f"{name}.mp4"
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype(np.int16)
            write_mp4(path, pcm, video=True)
        else:
            path = folder / f"{name}.wav"
            write_wav(path, samples)
        out[name] = Conversation(name, path, turns, round(len(samples) / RATE, 3))
    return out


@dataclass(frozen=True)
class LongConversation:
    """A long input that never sits whole in memory: `pieces()` makes it round by
    round, and `turns` is its reference."""

    sources: Sources
    seconds: float

    def pieces(self) -> Iterator[Samples]:
        for audio, _ in self.sources.rounds(self.seconds):
            yield audio

    @property
    def turns(self) -> list[RefTurn]:
        out: list[RefTurn] = []
        at = 0.0
        for audio, turns in self.sources.rounds(self.seconds):
            out += [RefTurn(round(at + t.start, 3), round(at + t.end, 3), t.speaker) for t in turns]
            at += len(audio) / RATE
        return out
