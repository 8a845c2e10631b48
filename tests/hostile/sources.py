"""Clean media to break: seeded tones and noise encoded by PyAV in every whitelisted
format (and a few that are not), plus the committed speech fixture.

Nothing here judges accuracy, so noise stands in for speech. Every source is a couple of
seconds long and a few tens of KB, so hundreds of variants upload quickly.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np

from tests.conftest import FIXTURES

SECONDS = 2.0
FRAME = 1024
# No random serial numbers or UIDs (Ogg, Matroska), no library versions: the same bytes
# on every run.
BITEXACT = {"fflags": "+bitexact"}


@dataclass(frozen=True)
class Spec:
    """One clean file: a codec in a container, at a rate and channel count."""

    name: str
    container: str
    codec: str
    rate: int
    layout: str = "mono"
    seconds: float = SECONDS
    container_options: dict[str, str] = field(default_factory=dict)
    codec_options: dict[str, str] = field(default_factory=dict)
    video: str | None = None


SPECS = (
    Spec("pcm16.wav", "wav", "pcm_s16le", 16_000),
    Spec("pcm8.wav", "wav", "pcm_u8", 8_000),
    Spec("float.wav", "wav", "pcm_f32le", 22_050, "stereo"),
    Spec("pcm24.wav", "wav", "pcm_s24le", 48_000),
    Spec("alaw.wav", "wav", "pcm_alaw", 8_000),
    Spec("mulaw.wav", "wav", "pcm_mulaw", 8_000),
    Spec("ima.wav", "wav", "adpcm_ima_wav", 16_000),
    Spec("msadpcm.wav", "wav", "adpcm_ms", 22_050),
    Spec("surround.wav", "wav", "pcm_s16le", 16_000, "5.1", seconds=1.0),
    Spec("tone.mp3", "mp3", "libmp3lame", 44_100),
    Spec("low.mp3", "mp3", "libmp3lame", 8_000),
    Spec("tone.flac", "flac", "flac", 16_000),
    Spec("opus.ogg", "ogg", "libopus", 48_000),
    Spec("vorbis.ogg", "ogg", "vorbis", 44_100, "stereo", codec_options={"strict": "-2"}),
    Spec("flac.ogg", "ogg", "flac", 16_000),
    # MediaRecorder's WebM: no duration in the header.
    Spec("live.webm", "webm", "libopus", 48_000, container_options={"live": "1"}),
    Spec("opus.webm", "webm", "libopus", 48_000),
    Spec("aac.mkv", "matroska", "aac", 16_000),
    Spec("ac3.mkv", "matroska", "ac3", 48_000, "stereo"),
    Spec("tone.m4a", "ipod", "aac", 16_000, container_options={"movflags": "faststart"}),
    Spec("alac.m4a", "ipod", "alac", 16_000),
    Spec("eac3.mp4", "mp4", "eac3", 48_000),
    Spec("pcm.mov", "mov", "pcm_s16be", 16_000),
    Spec("amr.3gp", "3gp", "libopencore_amrnb", 8_000),
    Spec("tone.aac", "adts", "aac", 16_000),
    Spec("mp2.ts", "mpegts", "mp2", 48_000),
    Spec("video.mkv", "matroska", "libopus", 48_000, video="mpeg4"),
    Spec("video.mp4", "mp4", "aac", 16_000, video="libx264"),
    # Codecs FFmpeg decodes but vtx does not whitelist.
    Spec("wavpack.mkv", "matroska", "wavpack", 44_100),
    Spec("tta.mkv", "matroska", "tta", 16_000),
    Spec("g722.wav", "wav", "g722", 16_000),
    Spec("g726.wav", "wav", "adpcm_g726", 8_000),
    Spec("yamaha.wav", "wav", "adpcm_yamaha", 16_000),
    Spec("pcm64.wav", "wav", "pcm_s64le", 8_000),
    # A demuxer vtx does not whitelist, holding plain PCM.
    Spec("pcm.w64", "w64", "pcm_s16le", 16_000),
)


def signal(rate: int, channels: int, seconds: float, seed: int) -> np.ndarray:
    """A tone under noise, int16, channels first: audible, deterministic, not speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    tone = 6000 * np.sin(2 * np.pi * 220 * t)
    noise = rng.normal(0, 1500, (channels, t.size))
    return np.clip(tone + noise, -32768, 32767).astype(np.int16)


def encode(spec: Spec, seed: int = 0) -> bytes:
    """The spec's file as bytes, written through PyAV's muxers (to disk: MP4's
    `faststart` rewrites the file it wrote)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out"
        options = BITEXACT | spec.container_options
        with av.open(str(path), "w", spec.container, options=options) as out:
            _mux(out, spec, seed)
        return path.read_bytes()


def _mux(out: av.container.OutputContainer, spec: Spec, seed: int) -> None:
    video = _video_stream(out, spec.video) if spec.video else None
    audio = out.add_stream(spec.codec, rate=spec.rate, options=spec.codec_options)
    assert isinstance(audio, av.AudioStream)
    audio.layout = spec.layout
    out.start_encoding()  # writes the header even when no sample follows
    if video is not None:
        _mux_video(out, video, spec.seconds)
    samples = signal(spec.rate, av.AudioLayout(spec.layout).nb_channels, spec.seconds, seed)
    for start in range(0, samples.shape[1], FRAME):
        block = samples[:, start : start + FRAME]
        frame = av.AudioFrame.from_ndarray(block, format="s16p", layout=spec.layout)
        frame.sample_rate, frame.pts = spec.rate, start
        frame.time_base = Fraction(1, spec.rate)
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))


def _video_stream(out: av.container.OutputContainer, codec: str) -> av.VideoStream:
    stream = out.add_stream(codec, rate=5)
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    return stream


def _mux_video(out: av.container.OutputContainer, stream: av.VideoStream, seconds: float) -> None:
    for i in range(int(seconds * 5)):
        shade = np.full((48, 64, 3), (i * 37) % 255, np.uint8)
        frame = av.VideoFrame.from_ndarray(shade, format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, 5)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


@cache
def clean(name: str) -> bytes:
    """A clean source by name: one of SPECS, or the committed `speech.mp4`."""
    if name == "speech.mp4":
        return (FIXTURES / "speech.mp4").read_bytes()
    return encode(next(spec for spec in SPECS if spec.name == name))


def video_only() -> bytes:
    """An MP4 with an H.264 track and no audio at all."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4", options=BITEXACT) as out:
        _mux_video(out, _video_stream(out, "libx264"), SECONDS)
    return buffer.getvalue()


def long_silence(seconds: float, rate: int = 16_000) -> bytes:
    """FLAC of pure silence: minutes of audio in a few KB, the base of a lying length."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac", options=BITEXACT) as out:
        stream = out.add_stream("flac", rate=rate)
        stream.layout = "mono"
        block = np.zeros((1, 4608), np.int16)
        for start in range(0, int(seconds * rate), block.shape[1]):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            frame.time_base = Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()
