"""Opening untrusted media safely, and the facts a probe reads from it.

Every `av.open` in the suite goes through `open_media`: FFmpeg only gets the
demuxers on `FORMAT_WHITELIST`, so a playlist or concat file disguised as audio
cannot make it read other files on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import av.container

FORMAT_WHITELIST = "wav,mp3,flac,ogg,matroska,webm,mov,mp4,m4a,3gp,aac,mpegts"


class MediaError(Exception):
    """The file is not media this suite can use; the message is meant for a person."""


@dataclass(frozen=True)
class MediaInfo:
    format_name: str
    duration_s: float | None
    audio_codec: str | None
    video_codec: str | None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None


def open_media(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r", options={"format_whitelist": FORMAT_WHITELIST})
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(
            "The file is not audio or video in a supported format "
            "(WAV, MP3, FLAC, Ogg/Opus, Matroska/WebM, MP4/MOV/M4A, 3GP, AAC, MPEG-TS)."
        ) from exc


def probe(path: Path) -> MediaInfo:
    """Read container and stream facts without decoding; blocking, so run it in a thread."""
    with open_media(path) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        videos = [
            s
            for s in container.streams.video
            if not s.disposition & av.stream.Disposition.attached_pic
        ]
        if audio is None and not videos:
            raise MediaError("The file holds no audio or video stream.")
        duration = container.duration / av.time_base if container.duration else None
        if duration is None and audio is not None and audio.duration and audio.time_base:
            duration = float(audio.duration * audio.time_base)
        return MediaInfo(
            format_name=container.format.name,
            duration_s=duration,
            audio_codec=audio.codec_context.name if audio is not None else None,
            video_codec=videos[0].codec_context.name if videos else None,
        )
