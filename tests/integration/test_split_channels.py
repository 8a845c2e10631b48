"""The split decides each job's speaker route from its audio (real media, real PyAV).

Two channels that hold different voices are cut one channel at a time, every chunk
knowing its channel, and no diarization is asked for; a mix (mono, or stereo whose
channels are copies) goes to the speakers service through a pending diarization.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from services.splitter.chunking import SAMPLE_RATE
from services.splitter.decode import decode_pcm
from services.splitter.tasks import split_job
from shared.models import ChunkStatus, Diarization, Job, SpeakerRoute
from shared.runtime import Resources
from tests.conftest import SHARED_MEDIA
from tests.integration.test_pipeline import chunks_of, reload, submit


def write_stereo(path: Path, left: np.ndarray, right: np.ndarray) -> Path:
    """A 16 kHz stereo WAV of two int16 signals."""
    n = max(len(left), len(right))
    pairs = np.zeros((n, 2), np.int16)
    pairs[: len(left), 0], pairs[: len(right), 1] = left, right
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="stereo")
        frame = av.AudioFrame.from_ndarray(pairs.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture
async def speech(speech_mp4: Path) -> np.ndarray:
    return await asyncio.to_thread(lambda: np.concatenate(list(decode_pcm(speech_mp4, 3600))))


@pytest.fixture
def interview(tmp_path: Path, speech: np.ndarray) -> Path:
    """The speech's first half on the left, its second half on the right, after it:
    two talkers taking turns, one per channel."""
    half = len(speech) // 2
    right = np.concatenate([np.zeros(half, np.int16), speech[half:]])
    return write_stereo(tmp_path / "interview.wav", speech[:half], right)


@pytest.fixture
def dual_mono(tmp_path: Path, speech: np.ndarray) -> Path:
    return write_stereo(tmp_path / "dual-mono.wav", speech, speech)


async def split(ctx: dict[str, Any], res: Resources, path: Path, **fields: Any) -> Job:
    job = await submit(res, path, **fields)
    assert await split_job(ctx, {"job_id": job.id}) == "split"
    return await reload(res, job.id)


async def diarization(res: Resources, job_id: str) -> Diarization | None:
    async with res.sessions() as session:
        return await session.get(Diarization, job_id)


async def test_each_channel_of_an_interview_is_cut_on_its_own(
    ctx: dict[str, Any], resources: Resources, interview: Path
) -> None:
    job = await split(ctx, resources, interview, speakers="auto")
    assert job.speaker_route == SpeakerRoute.channels
    chunks = await chunks_of(resources, job.id)
    assert job.chunks_total == len(chunks)
    by_channel = {c: [k for k in chunks if k.channel == c] for c in (0, 1)}
    assert (
        by_channel[0] and by_channel[1] and len(by_channel[0]) + len(by_channel[1]) == len(chunks)
    )
    for part in by_channel.values():  # each channel covers the whole file on its own clock
        assert part[0].start_s == 0
        assert part[-1].end_s == pytest.approx(job.duration_s, abs=0.1)
    # The left channel is silent after its half, the right before it: VAD finds speech
    # in each channel only where its talker speaks.
    half_s = job.duration_s / 2
    left = [c.start_s + a for c in by_channel[0] for w in c.speech or [] for a, _ in w]
    right = [c.start_s + a for c in by_channel[1] for w in c.speech or [] for a, _ in w]
    assert left and max(left) < half_s
    assert right and min(right) > half_s - 1
    assert await diarization(resources, job.id) is None


async def test_channel_chunks_hold_that_channel_alone(
    ctx: dict[str, Any], resources: Resources, interview: Path, speech: np.ndarray
) -> None:
    job = await split(ctx, resources, interview, speakers="2")
    for chunk in await chunks_of(resources, job.id):
        pcm = np.frombuffer(await resources.store.get_bytes(chunk.key), np.int16)
        start = round(chunk.start_s * SAMPLE_RATE)
        half = len(speech) // 2
        if chunk.channel == 0:
            expected = np.concatenate([speech[:half], np.zeros(len(speech), np.int16)])
        else:
            expected = np.concatenate([np.zeros(half, np.int16), speech[half:]])
        reference = expected[start : start + len(pcm)].astype(np.int32)
        assert np.abs(pcm.astype(np.int32) - reference).max() <= 2  # resampler rounding


async def test_a_file_whose_channels_are_copies_is_one_mix_for_the_speakers_service(
    ctx: dict[str, Any], resources: Resources, dual_mono: Path
) -> None:
    job = await split(ctx, resources, dual_mono, speakers="auto")
    assert job.speaker_route == SpeakerRoute.voices
    assert {c.channel for c in await chunks_of(resources, job.id)} == {None}
    found = await diarization(resources, job.id)
    assert found is not None and found.status == ChunkStatus.pending and found.turns is None


async def test_a_request_that_rules_out_two_speakers_is_never_split_by_channel(
    ctx: dict[str, Any], resources: Resources, interview: Path
) -> None:
    for fields in ({"speakers": "3"}, {"speakers": "auto", "min_speakers": 3}):
        job = await split(ctx, resources, interview, **fields)
        assert job.speaker_route == SpeakerRoute.voices, fields


async def test_without_speakers_there_is_no_route_and_no_diarization(
    ctx: dict[str, Any], resources: Resources, interview: Path
) -> None:
    job = await split(ctx, resources, interview)
    assert job.speaker_route is None
    assert {c.channel for c in await chunks_of(resources, job.id)} == {None}
    assert await diarization(resources, job.id) is None


async def test_a_second_split_makes_the_same_chunks_and_one_diarization(
    ctx: dict[str, Any], resources: Resources, dual_mono: Path
) -> None:
    job = await split(ctx, resources, dual_mono, speakers="auto")
    first = [(c.index, c.start_s, c.end_s, c.channel) for c in await chunks_of(resources, job.id)]
    async with resources.sessions() as session:  # as if its worker died mid-split
        row = await session.get(Job, job.id)
        assert row is not None
        row.status, row.lease_owner, row.lease_expires_at = "splitting", None, None
        session.add(row)
        await session.commit()
    assert await split_job(ctx, {"job_id": job.id}) == "split"
    again = [(c.index, c.start_s, c.end_s, c.channel) for c in await chunks_of(resources, job.id)]
    assert again == first
    assert (await diarization(resources, job.id)) is not None


@pytest.mark.skipif(not SHARED_MEDIA.exists(), reason="needs ../shared/media")
async def test_real_recordings_take_the_route_their_channels_call_for(
    ctx: dict[str, Any], resources: Resources
) -> None:
    stereo = await split(ctx, resources, SHARED_MEDIA / "stereo_diarization.wav", speakers="auto")
    assert stereo.speaker_route == SpeakerRoute.channels
    jfk = await split(ctx, resources, SHARED_MEDIA / "jfk.flac", speakers="auto")  # stereo copy
    assert jfk.speaker_route == SpeakerRoute.voices
