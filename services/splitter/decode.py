"""Streaming decode of a file's audio to 16 kHz mono 16-bit PCM, within a budget.

Mono is the mix of every channel, or one channel of a stereo file when each channel
holds its own speaker (services/splitter/channels.py decides).

Blocks come out as they are decoded, so a two-hour file never sits whole in memory.
Only the chosen audio stream is read and decoded; every other stream is discarded by
the demuxer. The budget is the probe's duration with a margin: a file whose header
lies about its length stops there instead of becoming hours of work.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import structlog
from av.audio.frame import AudioFrame
from av.stream import Discard

from services.splitter.chunking import SAMPLE_RATE, Samples
from shared.media import MediaError, audio_stream, check_sample_rate, open_media, too_long

log = structlog.get_logger(__name__)

# Headers round, and some formats only estimate their length from the bit rate.
MARGIN = 1.25
SLACK_S = 30.0
FFMPEG_MIXES = 8  # channels FFmpeg can always mix down, whatever their order


@dataclass(frozen=True)
class Budget:
    """How much audio a file may decode to, and what its owner is told past that."""

    seconds: float
    message: str


def budget(declared_s: float | None, max_seconds: float) -> Budget:
    """The probe's duration with a margin, never past `max_seconds` (VTX_MAX_DURATION_S)."""
    allowed = max_seconds if declared_s is None else declared_s * MARGIN + SLACK_S
    if declared_s is None or allowed >= max_seconds:
        return Budget(max_seconds, too_long(max_seconds))
    return Budget(
        allowed,
        f"The file decodes to more audio than it declares ({declared_s:.1f} s); decoding "
        f"stopped at {allowed:.0f} s. Its header is wrong or the file was made to mislead: "
        "re-encode it, e.g. `ffmpeg -i INPUT OUTPUT.flac`, and upload that.",
    )


def decode_pcm(
    path: Path, max_seconds: float, declared_s: float | None = None, channel: int | None = None
) -> Iterator[Samples]:
    """Yield int16 blocks of the mix (or of stereo `channel` 0 or 1); MediaError for
    audio that cannot be used, or past `budget(declared_s, max_seconds)`, the probe's
    duration with its margin."""
    allowed = budget(declared_s, max_seconds)
    limit = int(allowed.seconds * SAMPLE_RATE)
    decoded = 0
    layout = "mono" if channel is None else "stereo"
    with closing(_blocks(path, layout)) as blocks:  # the file closes when decoding stops
        for block in blocks:
            if channel is not None:  # packed s16 stereo: L R L R ...
                block = np.ascontiguousarray(block[channel::2])
            decoded += len(block)
            if decoded > limit:
                raise MediaError(allowed.message)
            yield block


def channel_count(path: Path) -> int:
    """The channels of the stream `decode_pcm` reads, as its header says."""
    with open_media(path) as container:
        return audio_stream(container).layout.nb_channels


def stereo_pcm(path: Path, seconds: float) -> Iterator[Samples]:
    """Blocks of (n, 2) int16 samples, left and right, over at most the first `seconds`."""
    limit = int(seconds * SAMPLE_RATE)
    decoded = 0
    with closing(_blocks(path, "stereo")) as blocks:
        for block in blocks:
            pairs = block.reshape(-1, 2)[: limit - decoded]
            decoded += len(pairs)
            yield pairs
            if decoded >= limit:
                return


def _blocks(path: Path, layout: str) -> Generator[Samples, None, None]:
    with open_media(path) as container:
        stream = audio_stream(container)
        for other in container.streams:
            if other is not stream:
                other.discard = Discard.all
        stream.codec_context.thread_type = "AUTO"
        mixer = Mixer(layout)
        try:
            for frame in container.decode(stream):
                yield from mixer.add(frame)
        # PyAV's demux raises IndexError past the last packet when a stream appeared
        # mid-file (MPEG-TS may add one at any PID).
        except (av.error.FFmpegError, ValueError, IndexError) as exc:
            _damaged(exc, mixer.samples)
        try:
            yield from mixer.flush()
        except (av.error.FFmpegError, ValueError) as exc:
            _damaged(exc, mixer.samples)


def _damaged(exc: Exception, samples: int) -> None:
    """A truncated or damaged recording keeps what was readable, as ffmpeg itself would."""
    if samples == 0:
        raise MediaError("The audio track could not be decoded.") from exc
    log.warning("decode.truncated", seconds=samples / SAMPLE_RATE, error=str(exc))


class Mixer:
    """Frames of any rate, layout and sample format to 16 kHz s16, mono (the mix) or
    packed stereo.

    A change of parameters mid-stream (a broadcast switching between stereo and 5.1,
    joined recordings) starts a fresh resampler, as ffmpeg does.
    """

    def __init__(self, layout: str = "mono") -> None:
        self._resampler: av.AudioResampler | None = None
        self._shape: tuple[str, str, int] | None = None
        self._layout = layout
        self._width = 1 if layout == "mono" else 2
        self.samples = 0  # per channel

    def add(self, frame: AudioFrame) -> Iterator[Samples]:
        check_sample_rate(frame.sample_rate)
        if frame.layout.nb_channels > FFMPEG_MIXES:
            frame = _averaged(frame)
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if shape != self._shape:
            yield from self.flush()
            self._shape = shape
        self._resampler = self._resampler or av.AudioResampler(
            format="s16", layout=self._layout, rate=SAMPLE_RATE
        )
        yield from self._blocks(self._resampler.resample(frame))

    def flush(self) -> Iterator[Samples]:
        if self._resampler is not None:
            yield from self._blocks(self._resampler.resample(None))
        self._resampler, self._shape = None, None

    def _blocks(self, frames: Iterable[AudioFrame]) -> Iterator[Samples]:
        for out in frames:
            block = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            self.samples += len(block) // self._width
            yield block


def _averaged(frame: AudioFrame) -> AudioFrame:
    """The channels' mean as one: FFmpeg has no downmix for most layouts past 8 channels."""
    samples = frame.to_ndarray()
    if not frame.format.is_planar:
        samples = samples.reshape(-1, frame.layout.nb_channels).T
    mono = samples.mean(axis=0).astype(samples.dtype).reshape(1, -1)
    out = AudioFrame.from_ndarray(mono, format=frame.format.packed.name, layout="mono")
    out.sample_rate = frame.sample_rate
    return out
