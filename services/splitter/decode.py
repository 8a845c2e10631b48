"""Streaming decode of a file's first audio track to 16 kHz mono 16-bit PCM.

Blocks come out as they are decoded, so a two-hour file never sits whole in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import structlog

from services.splitter.chunking import SAMPLE_RATE, Samples
from shared.media import MediaError, open_media

log = structlog.get_logger(__name__)


def decode_pcm(path: Path, max_seconds: float) -> Iterator[Samples]:
    """Yield int16 blocks; stop with MediaError past `max_seconds` of audio."""
    limit = int(max_seconds * SAMPLE_RATE)
    decoded = 0
    with open_media(path) as container:
        if not container.streams.audio:
            raise MediaError("The file has no audio track, so there is nothing to transcribe.")
        stream = container.streams.audio[0]
        stream.codec_context.thread_type = "AUTO"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    block = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                    decoded += len(block)
                    if decoded > limit:
                        raise MediaError(_too_long(max_seconds))
                    yield block
        except av.error.InvalidDataError as exc:
            if decoded == 0:
                raise MediaError("The audio track could not be decoded.") from exc
            # A truncated recording keeps what was readable, as ffmpeg itself would.
            log.warning("decode.truncated", seconds=decoded / SAMPLE_RATE, error=str(exc))
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1).astype(np.int16, copy=False)


def _too_long(max_seconds: float) -> str:
    return (
        f"The audio is longer than the limit of {max_seconds / 3600:g} h "
        f"({max_seconds:g} s, VTX_MAX_DURATION_S)."
    )


def check_duration(duration_s: float | None, max_seconds: float) -> None:
    if duration_s is not None and duration_s > max_seconds:
        raise MediaError(_too_long(max_seconds))
