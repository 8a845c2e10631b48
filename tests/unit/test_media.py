from __future__ import annotations

from pathlib import Path

import av
import pytest

from shared.media import MediaError, probe
from tests.conftest import make_playlist_attack, make_silent_video


def test_probe_reads_container_and_streams(speech_mp4: Path) -> None:
    info = probe(speech_mp4)
    assert info.audio_codec == "aac"
    assert info.video_codec == "h264"
    assert info.has_video and info.has_audio
    assert info.duration_s is not None and 20 < info.duration_s < 30


def test_video_without_audio_is_still_media(tmp_path: Path) -> None:
    info = probe(make_silent_video(tmp_path / "silent.mp4"))
    assert info.has_video and not info.has_audio


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
