"""Test media with known text: a programme of speech recordings repeated to a length.

Sources: the committed fixture (tests/fixtures/speech.mp4 + .txt), plus the real
recordings in ../shared/media that have a full reference transcript, when present.
Everything is generated with PyAV and cached under bench/out/media.
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

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CACHE = OUT / "media"
FIXTURE = ROOT / "tests" / "fixtures" / "speech.mp4"
FIXTURE_TEXT = ROOT / "tests" / "fixtures" / "speech.txt"
SHARED_MEDIA = ROOT.parent / "shared" / "media"
RATE = 16_000
GAP_S = 0.6  # silence between recordings: a quiet place for the splitter to cut
CLIP_S = 10.0

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Source:
    path: Path
    text: str


@dataclass(frozen=True)
class TestMedia:
    path: Path
    reference: str
    seconds: float


def sources(kind: str = "auto") -> list[Source]:
    """`fixture`, `shared` (the real recordings and the fixture), or `auto` (shared if present)."""
    fixture = Source(FIXTURE, FIXTURE_TEXT.read_text().strip())
    catalogue = SHARED_MEDIA / "transcripts.json"
    if kind == "fixture" or (kind == "auto" and not catalogue.exists()):
        return [fixture]
    facts: dict[str, dict[str, object]] = json.loads(catalogue.read_text())
    found = [
        Source(SHARED_MEDIA / name, str(entry["text"]))
        for name, entry in sorted(facts.items())
        if isinstance(entry.get("text"), str) and entry.get("language") == "en"
    ]
    return [*found, fixture]


def decode(path: Path) -> Pcm:
    """The first audio track as 16 kHz mono int16, the way the splitter decodes it."""
    blocks: list[Pcm] = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        for frame in container.decode(audio=0):
            blocks += [_s16(f) for f in resampler.resample(frame)]
        blocks += [_s16(f) for f in resampler.resample(None)]
    return np.concatenate(blocks).astype(np.int16, copy=False)


def _s16(frame: av.AudioFrame) -> Pcm:
    return np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)


def programme(items: Sequence[Source], seconds: float) -> tuple[Pcm, str]:
    """Recordings one after another, cyclically, until at least `seconds` of audio."""
    decoded = [decode(s.path) for s in items]
    gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
    parts: list[Pcm] = []
    texts: list[str] = []
    total = 0
    i = 0
    while total < seconds * RATE:
        pcm = decoded[i % len(items)]
        parts += [pcm, gap]
        texts.append(items[i % len(items)].text)
        total += len(pcm) + len(gap)
        i += 1
    return np.concatenate(parts), " ".join(texts)


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


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]


def long_video(seconds: float, kind: str = "auto") -> TestMedia:
    """An H.264 + AAC MP4 of at least `seconds` of speech and its reference text."""
    items = sources(kind)
    key = _key("video", seconds, [(str(s.path), s.text) for s in items])
    path, text = CACHE / f"speech-{int(seconds)}s-{key}.mp4", CACHE / f"speech-{key}.txt"
    if not (path.exists() and text.exists()):
        CACHE.mkdir(parents=True, exist_ok=True)
        pcm, reference = programme(items, seconds)
        write_mp4(path, pcm)
        text.write_text(reference + "\n")
    return TestMedia(path, text.read_text().strip(), duration(path))


def clip(kind: str = "auto", seconds: float = CLIP_S) -> TestMedia:
    """The first `seconds` of the programme (a short request; its text is not exact)."""
    items = sources(kind)
    key = _key("clip", seconds, [str(s.path) for s in items])
    path = CACHE / f"clip-{int(seconds)}s-{key}.mp4"
    pcm, reference = programme(items, seconds)
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        write_mp4(path, pcm[: int(seconds * RATE)])
    return TestMedia(path, reference, duration(path))


def long_audio(hours: float, kind: str = "auto") -> Path:
    """Mono 16 kHz AAC of `hours` (speech with pauses): 10 minutes encoded, then repeated."""
    items = sources(kind)
    key = _key("audio", hours, [str(s.path) for s in items])
    path = CACHE / f"audio-{hours:g}h-{key}.m4a"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        block = CACHE / f"audio-block-{key}.m4a"
        if not block.exists():
            pcm, _ = programme(items, 600)
            write_mp4(block, pcm, video=False)
        times = max(1, math.ceil(hours * 3600 / duration(block)))
        repeat_remux(block, path, times)
    return path


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
