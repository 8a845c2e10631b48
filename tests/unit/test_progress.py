"""Progress counts the audio the chunks add up to: twice the file when cut channel by channel."""

from __future__ import annotations

from datetime import timedelta

from services.gateway.views import Done, progress
from shared.models import Job, JobStatus, SpeakerRoute, utcnow


def transcribing(route: SpeakerRoute | None) -> Job:
    return Job(
        media_key="m",
        chunk_seconds=30,
        duration_s=100.0,
        status=JobStatus.transcribing,
        speaker_route=route,
        started_at=utcnow() - timedelta(seconds=10),
    )


def test_a_mix_is_done_when_its_duration_is() -> None:
    shown = progress(transcribing(None), Done(chunks=2, seconds=50.0))
    assert shown.audio_seconds_total == 100.0
    assert shown.percent == 50.0
    assert shown.eta_seconds is not None and 9 < shown.eta_seconds < 11


def test_both_channels_count_when_each_channel_is_transcribed() -> None:
    shown = progress(transcribing(SpeakerRoute.channels), Done(chunks=2, seconds=50.0))
    assert shown.audio_seconds_total == 200.0
    assert shown.percent == 25.0  # one channel half done is a quarter of the work
    assert shown.eta_seconds is not None and 29 < shown.eta_seconds < 31
