from __future__ import annotations

from pathlib import Path

import av
import av.logging
import pytest

from shared.media import AUDIO_DECODERS, OPEN_OPTIONS, MediaError, probe
from tests.conftest import make_playlist_attack, make_silent_video
from tests.hostile import lies
from tests.hostile.sources import clean


def test_probe_reads_container_and_streams(speech_mp4: Path) -> None:
    info = probe(speech_mp4)
    assert info.audio_codec == "aac"
    assert info.video_codec == "h264"
    assert info.has_video and info.audio_codec is not None
    assert info.duration_s is not None and 20 < info.duration_s < 30


def test_video_without_audio_is_still_media(tmp_path: Path) -> None:
    info = probe(make_silent_video(tmp_path / "silent.mp4"))
    assert info.has_video and info.audio_codec is None


def test_text_is_not_media(tmp_path: Path) -> None:
    fake = tmp_path / "talk.mp4"
    fake.write_text("this is not a video, just text\n" * 50)
    with pytest.raises(MediaError, match="not audio or video"):
        probe(fake)


def test_a_playlist_disguised_as_wav_cannot_make_ffmpeg_read_other_files(
    tmp_path: Path, speech_mp4: Path
) -> None:
    playlist = make_playlist_attack(tmp_path, speech_mp4)
    with av.open(str(playlist)) as unguarded:  # the attack is real without the whitelist
        assert unguarded.format.name == "hls" and unguarded.streams.audio
    with pytest.raises(MediaError):
        probe(playlist)


# ------------------------------------------------------------ decoders and sample rates
def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_probe_reads_rate_and_channels_for_the_quotas(speech_mp4: Path) -> None:
    info = probe(speech_mp4)
    assert (info.sample_rate, info.channels) == (22_050, 1)


def test_audio_sampled_below_8_khz_is_refused_with_its_rate(tmp_path: Path) -> None:
    # The case: 40 KB at 1 Hz would be 5.6 hours of audio at 16 kHz.
    one_hz = _write(tmp_path / "tiny.wav", lies.wav(bytes(40_000), rate=1))
    with pytest.raises(MediaError, match=r"sampled at 1 Hz; vtx needs at least 8,000 Hz"):
        probe(one_hz)
    with pytest.raises(MediaError, match="7,999 Hz"):
        probe(_write(tmp_path / "low.wav", lies.wav(bytes(4_000), rate=7_999)))
    ok = probe(_write(tmp_path / "ok.wav", lies.wav(bytes(4_000), rate=8_000)))
    assert ok.audio_codec is not None


def test_absurd_rates_and_channel_counts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="at most 192,000 Hz"):
        probe(_write(tmp_path / "a.wav", lies.wav(bytes(4_000), rate=192_001)))
    with pytest.raises(MediaError, match="33 channels; vtx takes at most 32"):
        probe(_write(tmp_path / "b.wav", lies.wav(bytes(6_600), channels=33)))
    with pytest.raises(MediaError, match="channel count"):
        probe(_write(tmp_path / "c.wav", lies.wav(bytes(4_000), channels=65_535)))


def test_a_codec_off_the_whitelist_is_refused_by_name(tmp_path: Path) -> None:
    wavpack = _write(tmp_path / "talk.mkv", clean("wavpack.mkv"))
    with av.open(str(wavpack)) as unguarded:  # FFmpeg itself would decode it
        assert next(unguarded.decode(audio=0)).samples > 0
    with pytest.raises(MediaError, match="encoded as wavpack, which vtx does not decode"):
        probe(wavpack)


def test_a_codec_ffmpeg_does_not_know_is_a_media_error(tmp_path: Path) -> None:
    unknown = _write(tmp_path / "odd.wav", lies.wav(bytes(4_000), tag=0x1234))
    with pytest.raises(MediaError, match="codec that vtx does not decode"):
        probe(unknown)


def test_every_whitelisted_decoder_exists_and_decodes_audio() -> None:
    for name in AUDIO_DECODERS:
        assert av.Codec(name, "r").type == "audio", name
    assert "h264" not in OPEN_OPTIONS["codec_whitelist"].split(",")


def test_the_probe_never_opens_a_video_decoder(speech_mp4: Path) -> None:
    """FFmpeg's stream analysis decodes video frames unless the codec whitelist stops it:
    the H.264 decoder may only say that it was refused."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.VERBOSE)
    try:
        with av.logging.Capture() as logs:
            probe(speech_mp4)
    finally:
        av.logging.set_level(level)
    said = [message for _, name, message in logs if name == "h264"]
    assert said and all("not on whitelist" in message for message in said), said


def test_a_header_without_duration_is_measured_from_its_packets(tmp_path: Path) -> None:
    live = _write(tmp_path / "recording.webm", clean("live.webm"))  # as MediaRecorder writes
    with av.open(str(live)) as container:
        assert container.duration is None
    info = probe(live)
    assert info.duration_s is not None and 1.9 < info.duration_s < 2.1


def test_audio_without_samples_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="holds no samples"):
        probe(_write(tmp_path / "empty.wav", lies.wav(b"")))
