"""Opening untrusted media safely, and the facts a probe reads from it.

Every `av.open` in the suite goes through `open_media`, which narrows what FFmpeg may do
with a file nobody has vetted:
- demuxers only from `FORMAT_WHITELIST`, so a playlist or concat file disguised as audio
  cannot make it read other files on the server;
- decoders only from `AUDIO_DECODERS`, so no video decoder runs, not even while FFmpeg
  probes the streams, and the decoders of rare codecs are never reached;
- a small `probesize` and `analyzeduration`, so probing reads and decodes little.

`probe` then refuses what would cost far more than it looks: audio sampled below 8 kHz
(a 40 KB WAV declared at 1 Hz is hours of audio at 16 kHz), absurd rates or channel
counts, and files whose duration cannot be known before decoding, since every limit and
quota is counted from the probe's duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import av.container
from av.audio.stream import AudioStream
from av.stream import Discard, Disposition, Stream

FORMAT_WHITELIST = "wav,mp3,flac,ogg,matroska,webm,mov,mp4,m4a,3gp,aac,mpegts"

_PCM = ("u8", "s16le", "s16be", "s24le", "s24be", "s32le", "s32be")
_PCM_FLOAT = ("f32le", "f32be", "f64le", "f64be", "alaw", "mulaw")
# libavcodec's decoder names (FFmpeg matches them exactly, no wildcards): what the
# whitelisted containers carry for speech, and nothing else.
AUDIO_DECODERS = frozenset(
    {
        *(f"pcm_{name}" for name in _PCM + _PCM_FLOAT),
        "adpcm_ima_wav",  # voice recorders' WAV
        "adpcm_ms",
        "mp3float",  # FFmpeg picks the float MPEG audio decoders first
        "mp3",
        "mp2float",
        "mp2",
        "aac",
        "aac_fixed",
        "aac_latm",  # AAC in broadcast MPEG-TS
        "flac",
        "alac",
        "opus",
        "vorbis",
        "ac3",
        "ac3_fixed",
        "eac3",
        "amrnb",  # phone recordings in 3GP
        "amrwb",
    }
)
AUDIO_FORMATS = "8 to 32-bit PCM, MP3, AAC, FLAC, ALAC, Opus, Vorbis, AC-3/E-AC-3 or AMR"

PROBE_BYTES = 1 << 20  # FFmpeg's default is 5 MB
PROBE_MICROSECONDS = 2_000_000  # FFmpeg's default is 5 s
MAX_STREAMS = 64
OPEN_OPTIONS = {
    "format_whitelist": FORMAT_WHITELIST,
    "codec_whitelist": ",".join(sorted(AUDIO_DECODERS)),
    "probesize": str(PROBE_BYTES),
    "analyzeduration": str(PROBE_MICROSECONDS),
    "max_streams": str(MAX_STREAMS),
}

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 32
# Counting packets finds the length of a file whose header has none (a browser's
# MediaRecorder WebM); five million is more than a day of audio in any whitelisted codec.
MAX_COUNTED_PACKETS = 5_000_000

NOT_MEDIA = (
    "The file is not audio or video in a supported format "
    "(WAV, MP3, FLAC, Ogg/Opus, Matroska/WebM, MP4/MOV/M4A, 3GP, AAC, MPEG-TS)."
)
NO_SAMPLES = "The audio track holds no samples."


class MediaError(Exception):
    """The file is not media this suite can use; the message is meant for a person."""


@dataclass(frozen=True)
class MediaInfo:
    """What the probe learned; `duration_s` is known whenever there is audio."""

    format_name: str
    duration_s: float | None
    audio_codec: str | None
    video_codec: str | None
    sample_rate: int | None = None
    channels: int | None = None

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None


def open_media(path: Path) -> av.container.InputContainer:
    """The file opened for reading under the whitelists and probing limits above."""
    try:
        return av.open(
            str(path), mode="r", container_options=OPEN_OPTIONS, metadata_errors="replace"
        )
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(NOT_MEDIA) from exc


def probe(path: Path) -> MediaInfo:
    """Read container and stream facts; blocking, so run it in a thread. Only FFmpeg's
    stream analysis decodes anything: a little audio, never video."""
    with open_media(path) as container:
        audio = audio_stream(container) if container.streams.audio else None
        videos = [
            s for s in container.streams.video if not s.disposition & Disposition.attached_pic
        ]
        if audio is None and not videos:
            raise MediaError("The file holds no audio or video stream.")
        if audio is None:
            return MediaInfo(
                container.format.name, _declared(container, None), None, _codec(videos[0])
            )
        check_sample_rate(audio.codec_context.sample_rate)
        check_channels(audio.codec_context.channels)
        duration = _declared(container, audio)
        if duration is None:
            duration = _counted(container, audio)
        return MediaInfo(
            format_name=container.format.name,
            duration_s=duration,
            audio_codec=audio.codec_context.name,
            video_codec=_codec(videos[0]) if videos else None,
            sample_rate=audio.codec_context.sample_rate,
            channels=audio.codec_context.channels,
        )


def audio_stream(container: av.container.InputContainer) -> AudioStream:
    """The first audio stream with a whitelisted decoder; MediaError if there is none."""
    streams = container.streams.audio
    if not streams:
        raise MediaError("The file has no audio track, so there is nothing to transcribe.")
    for stream in streams:
        if stream.codec_context is not None and stream.codec_context.name in AUDIO_DECODERS:
            return stream
    context = streams[0].codec_context
    codec = f"as {context.name}, which" if context is not None else "in a codec that"
    raise MediaError(
        f"The audio is encoded {codec} vtx does not decode. Convert it to "
        f"{AUDIO_FORMATS} first, e.g. `ffmpeg -i INPUT -c:a flac OUTPUT.flac`."
    )


def check_sample_rate(rate: int) -> None:
    """Refuse rates that make a small file hours of work, or a header that is nonsense."""
    convert = "convert it, e.g. `ffmpeg -i INPUT -ar 16000 OUTPUT.wav`"
    if rate <= 0:
        raise MediaError(f"The audio does not say its sample rate; {convert}.")
    if rate < MIN_SAMPLE_RATE:
        raise MediaError(
            f"The audio is sampled at {rate:,} Hz; vtx needs at least {MIN_SAMPLE_RATE:,} Hz "
            f"(telephone quality). If the recording is fine, its header is wrong: {convert}."
        )
    if rate > MAX_SAMPLE_RATE:
        raise MediaError(
            f"The audio is sampled at {rate:,} Hz; vtx takes at most {MAX_SAMPLE_RATE:,} Hz: "
            f"{convert}."
        )


def check_channels(channels: int) -> None:
    mix = "mix it down first, e.g. `ffmpeg -i INPUT -ac 1 OUTPUT.wav`"
    if channels <= 0:
        raise MediaError(f"The audio does not give a channel count vtx can use; {mix}.")
    if channels > MAX_CHANNELS:
        raise MediaError(
            f"The audio has {channels:,} channels; vtx takes at most {MAX_CHANNELS}: {mix}."
        )


def _codec(stream: Stream) -> str:
    context = stream.codec_context
    return context.name if context is not None else "unknown"


def _declared(container: av.container.InputContainer, audio: AudioStream | None) -> float | None:
    """The longest duration the header gives (container or audio track), if any."""
    known = [container.duration / av.time_base] if container.duration else []
    if audio is not None and audio.duration and audio.time_base:
        known.append(float(audio.duration * audio.time_base))
    longest = max(known, default=0.0)
    return longest if longest > 0 else None


def _counted(container: av.container.InputContainer, audio: AudioStream) -> float:
    """The audio's length from its packets' timestamps, demuxed without decoding."""
    for stream in container.streams:
        if stream is not audio:
            stream.discard = Discard.all
    first: int | None = None
    end: int | None = None
    packets = 0
    try:
        for packet in container.demux(audio):
            if packet.size == 0:  # PyAV ends with an empty packet that flushes the decoder
                continue
            packets += 1
            if packets > MAX_COUNTED_PACKETS:
                raise MediaError(_unknown_length("it has too many packets to count"))
            start = packet.pts if packet.pts is not None else packet.dts
            if start is None:
                continue
            first = start if first is None else min(first, start)
            end = max(end or start, start + (packet.duration or 0))
    # A damaged tail, or PyAV's IndexError past the last packet when a stream appeared
    # mid-file: the length is what could be read, as decoding will find.
    except (av.error.FFmpegError, IndexError):
        pass
    if packets == 0:
        raise MediaError(NO_SAMPLES)
    if first is None or end is None or audio.time_base is None or end <= first:
        raise MediaError(_unknown_length("its packets carry no timestamps"))
    return float((end - first) * audio.time_base)


def _unknown_length(why: str) -> str:
    return (
        f"vtx cannot tell how long this file is: its header gives no duration and {why}. "
        "Limits are counted from the duration before any decoding, so remux it first, "
        "e.g. `ffmpeg -i INPUT -c copy OUTPUT.mkv`."
    )


def too_long(max_seconds: float) -> str:
    return (
        f"The audio is longer than the limit of {max_seconds / 3600:g} h "
        f"({max_seconds:g} s, VTX_MAX_DURATION_S)."
    )


def check_duration(duration_s: float | None, max_seconds: float) -> None:
    """Refuse before decoding what the probe already knows is too long."""
    if duration_s is not None and duration_s > max_seconds:
        raise MediaError(too_long(max_seconds))
