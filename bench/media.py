"""Bench media from real speech recordings only, built with PyAV and cached by content.

The recordings live beside the project (../shared/media, see its SOURCES.md), never in
it; without them the bench stops and says where to put them: synthesized speech misjudges
accuracy (TESTING.md), so there is no fallback to it. Each file is a `plan` rendered to
16 kHz mono, H.264 + AAC MP4, cached under .cache/bench/media keyed by the plan and the
bytes and texts of the recordings it uses.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from bench import plan

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CACHE = ROOT / ".cache" / "bench" / "media"
SHARED_MEDIA = ROOT.parent / "shared" / "media"
RATE = 16_000
FORMAT_VERSION = 2  # bump when the rendering changes, so old cache entries are not reused

# transcripts.json gives hotwords.mp3 no text, only that it says "ComfyUI"; this is
# what it says (base with the hotword, and tiny.en apart from "comfy eye", agree).
HOTWORDS_TEXT = "Then you go into your ComfyUI folder again, in the ComfyUI"
RECORDINGS = ("jfk.flac", "harvard_list72_8k.wav", "hotwords.mp3", "stereo_diarization.wav")
IN_TURN = {"stereo_diarization.wav"}  # one speaker per channel: played channel by channel

Pcm = npt.NDArray[np.int16]


class MediaMissing(SystemExit):
    """The recordings are not where the bench looks: uncaught, it prints its message and
    the program exits (no traceback, nothing measured)."""

    def __init__(self, folder: Path, missing: Sequence[str]) -> None:
        super().__init__(
            f"make bench measures real speech only and found no {', '.join(missing)} in "
            f"{folder}.\nPut the recordings {', '.join(RECORDINGS)} and their "
            f"transcripts.json there (see ../shared/media/SOURCES.md), or pass "
            f'BENCH_ARGS="--media-dir DIR" with a folder that holds them.'
        )


@dataclass(frozen=True)
class Recording:
    name: str
    path: Path
    text: str
    seconds: float


@dataclass(frozen=True)
class TestMedia:
    path: Path
    reference: str
    seconds: float


def reference_text(name: str, entry: dict[str, object]) -> str:
    """A recording's reference; a file with one speaker per channel is played channel
    after channel (see `decode`), so it says the left sentence, then the right one."""
    if isinstance(entry.get("text"), str):
        return str(entry["text"])
    channels = entry.get("channels")
    if isinstance(channels, dict):
        return " ".join(str(channels[k]) for k in ("left", "right") if k in channels)
    if name == "hotwords.mp3":
        return HOTWORDS_TEXT
    raise ValueError(f"no reference text for {name}")


def recordings(folder: Path = SHARED_MEDIA) -> list[Recording]:
    """The English recordings the bench is built from, with text and length."""
    catalogue = folder / "transcripts.json"
    missing = [n for n in (*RECORDINGS, "transcripts.json") if not (folder / n).is_file()]
    if missing:
        raise MediaMissing(folder, missing)
    facts: dict[str, dict[str, object]] = json.loads(catalogue.read_text())
    return [
        Recording(name, folder / name, reference_text(name, facts.get(name, {})), 0.0)
        for name in RECORDINGS
    ]


def decode(path: Path, in_turn: bool = False) -> Pcm:
    """The first audio track as 16 kHz mono int16, as the splitter reads it; `in_turn`
    plays a two-speaker stereo file channel after channel (left, a pause, right). Mixed
    down, the speakers of stereo_diarization.wav talk over each other, and no transcript
    of one stream can match a reference: every WER would measure the overlap."""
    with av.open(str(path)) as container:
        stereo = in_turn and container.streams.audio[0].channels == 2
        layout = "stereo" if stereo else "mono"
        resampler = av.AudioResampler(format="s16p" if stereo else "s16", layout=layout, rate=RATE)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        frames += resampler.resample(None)
    planes = np.concatenate([np.asarray(f.to_ndarray(), dtype=np.int16) for f in frames], axis=1)
    if not stereo:
        return planes.reshape(-1)
    pause = np.zeros(RATE // 2, np.int16)
    return np.concatenate([planes[0], pause, planes[1]])


class Library:
    """The recordings decoded once, and every bench file rendered from them on demand."""

    def __init__(self, folder: Path = SHARED_MEDIA, cache: Path = CACHE) -> None:
        found = recordings(folder)
        self.pcm = [decode(r.path, r.name in IN_TURN) for r in found]
        self.recordings = [
            Recording(r.name, r.path, r.text, len(p) / RATE)
            for r, p in zip(found, self.pcm, strict=True)
        ]
        self.cache = cache
        self._digest = _digest(found)

    @property
    def lengths(self) -> list[float]:
        return [r.seconds for r in self.recordings]

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.recordings]

    def render(self, p: plan.Plan) -> TestMedia:
        """The plan as an MP4 with its reference text, from the cache when built before."""
        key = _key(FORMAT_VERSION, self._digest, p)
        path = self.cache / f"{p.name}-{key}.mp4"
        if not path.exists():
            self.cache.mkdir(parents=True, exist_ok=True)
            write_mp4(path, self.pcm_of(p))
        return TestMedia(path, p.reference(self.texts), p.seconds(self.lengths))

    def pcm_of(self, p: plan.Plan) -> Pcm:
        parts: list[Pcm] = []
        for piece in p.pieces:
            parts += [self.pcm[piece.recording], np.zeros(int(piece.gap_s * RATE), np.int16)]
        return np.concatenate(parts)

    def long_file(self, seconds: float) -> TestMedia:
        return self.render(plan.long_file(self.lengths, seconds))

    def clip(self) -> TestMedia:
        return self.render(plan.clip(RECORDINGS.index("jfk.flac")))

    def batch(self, count: int, seconds: float) -> list[TestMedia]:
        return [self.render(p) for p in plan.batch(self.lengths, count, seconds)]

    def long_audio(self, hours: float) -> Path:
        """Mono AAC of `hours` of speech: about 10 minutes encoded, then repeated."""
        block_plan = plan.long_file(self.lengths, 600)
        key = _key(FORMAT_VERSION, self._digest, block_plan, hours)
        path = self.cache / f"audio-{hours:g}h-{key}.m4a"
        if not path.exists():
            self.cache.mkdir(parents=True, exist_ok=True)
            block = self.cache / f"audio-block-{key}.m4a"
            if not block.exists():
                write_mp4(block, self.pcm_of(block_plan), video=False)
            repeat_remux(block, path, max(1, math.ceil(hours * 3600 / duration(block))))
        return path


def _digest(found: Sequence[Recording]) -> str:
    h = hashlib.sha256()
    for r in found:
        h.update(r.name.encode() + b"\0" + r.text.encode() + b"\0" + r.path.read_bytes())
    return h.hexdigest()


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def write_mp4(path: Path, pcm: Pcm, video: bool = True) -> None:
    """H.264 (a tiny picture, 2 fps) + AAC mono 16 kHz; audio only when `video` is False."""
    tmp = path.with_suffix(".part" + path.suffix)
    with av.open(str(tmp), "w", format="mp4") as out:
        astream = out.add_stream("aac", rate=RATE)
        astream.layout = "mono"
        astream.bit_rate = 48_000
        vstream = (
            out.add_stream("libx264", rate=2, options={"preset": "ultrafast"}) if video else None
        )
        if vstream is not None:
            vstream.width, vstream.height, vstream.pix_fmt = 160, 120, "yuv420p"
        for start in range(0, len(pcm), 1024):
            aframe = av.AudioFrame.from_ndarray(
                pcm[start : start + 1024].reshape(1, -1), format="s16", layout="mono"
            )
            aframe.sample_rate, aframe.pts, aframe.time_base = RATE, start, Fraction(1, RATE)
            out.mux(astream.encode(aframe))
        out.mux(astream.encode(None))
        if vstream is not None:
            for i in range(int(len(pcm) / RATE * 2)):
                shade = np.full((120, 160, 3), (i * 7) % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(shade, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 2)
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
    tmp.replace(path)


def repeat_remux(src: Path, dst: Path, times: int) -> None:
    """`src`'s audio packets `times` over, without re-encoding (fast for hours of audio)."""
    tmp = dst.with_suffix(".part" + dst.suffix)
    with av.open(str(src)) as first:
        stream = first.streams.audio[0]
        time_base = stream.time_base
        assert time_base is not None
        packets = [(p.pts, p.dts, p.duration, bytes(p)) for p in first.demux(stream) if p.size]
        span = sum(d or 0 for _, _, d, _ in packets)
        with av.open(str(tmp), "w", format="mp4") as out:
            ostream = out.add_stream_from_template(stream)
            for n in range(times):
                for pts, dts, duration, data in packets:
                    packet = av.Packet(data)
                    packet.stream = ostream
                    packet.time_base = time_base
                    packet.pts = None if pts is None else pts + n * span
                    packet.dts = None if dts is None else dts + n * span
                    packet.duration = duration
                    out.mux(packet)
    tmp.replace(dst)


def duration(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


def zeros(total: int, piece: int = 1 << 20) -> Iterator[bytes]:
    """`total` zero bytes in pieces: a 1 GB "upload" that never sits in memory."""
    block = bytes(piece)
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield block if n == piece else block[:n]
        sent += n
