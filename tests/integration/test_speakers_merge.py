"""The merge with speakers, on a real database and Redis: stored chunks and turns in,
a stored transcript whose words carry speakers out, rendered as a download would be."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from sqlalchemy import update
from sqlmodel import col

from services.transcriber.tasks import transcribe_chunk, try_merge
from shared.models import Chunk, ChunkStatus, Diarization, Job, JobStatus, Transcript
from shared.runtime import Resources
from shared.speakers import name_speakers
from shared.store import chunk_key
from shared.transcript import Format, Segment, TranscriptDoc, render
from tests.conftest import SHARED_MEDIA, words
from tests.subtitle_rules import assert_speaker_rules, parse

STEREO = SHARED_MEDIA / "stereo_diarization.wav"


def stored(text: str, *times: tuple[float, float]) -> dict[str, Any]:
    """A segment as the transcriber stores it (whole-file times, Whisper's spaces)."""
    words = [
        {"start": s, "end": e, "word": f" {w}", "probability": 0.9}
        for w, (s, e) in zip(text.split(), times, strict=True)
    ]
    return {
        "id": 0,
        "start": times[0][0],
        "end": times[-1][1],
        "text": f" {text}",
        "words": words,
    }


async def add_job(res: Resources, route: str | None, chunks: list[Chunk], **fields: Any) -> Job:
    """A job in the state the splitter leaves it, its chunks transcribed."""
    job = Job(
        media_key="media/x",
        chunk_seconds=10,
        status=JobStatus.transcribing,
        chunks_total=len(chunks),
        speakers=None if route is None else "auto",
        speaker_route=route,
        **fields,
    )
    async with res.sessions() as session:
        session.add(job)
        await session.flush()
        for chunk in chunks:
            chunk.job_id = job.id
            session.add(chunk)
        await session.commit()
    return job


def chunk(index: int, start: float, end: float, *segments: dict[str, Any], **kw: Any) -> Chunk:
    return Chunk(
        job_id="",
        index=index,
        start_s=start,
        end_s=end,
        key=f"chunks/{index}",
        status=ChunkStatus.done,
        language="en",
        language_probability=0.99,
        segments=list(segments),
        **kw,
    )


async def transcript_of(res: Resources, job_id: str) -> tuple[Job, Transcript]:
    async with res.sessions() as session:
        job = await session.get(Job, job_id)
        transcript = await session.get(Transcript, job_id)
    assert job is not None and transcript is not None
    return job, transcript


def as_doc(job: Job, transcript: Transcript) -> TranscriptDoc:
    """What the gateway renders: the stored rows, named as the job says."""
    doc = TranscriptDoc(
        language=transcript.language,
        duration=transcript.duration_s,
        segments=[Segment.model_validate(s) for s in transcript.segments],
    )
    return name_speakers(doc, job.speaker_names)


async def test_a_voices_job_waits_for_its_turns_then_merges_words_with_speakers(
    resources: Resources,
) -> None:
    # "Are you there?" is the second voice answering inside Whisper's one segment.
    first = stored(
        "Hello Ana. Are you there?", (0.3, 0.8), (0.9, 1.4), (2.1, 2.4), (2.5, 2.8), (2.9, 3.4)
    )
    chunks = [
        chunk(0, 0, 10, first),
        chunk(1, 10, 20, stored("Yes, I am.", (10.5, 11.0), (11.1, 11.3), (11.4, 11.8))),
    ]
    job = await add_job(resources, "voices", chunks, speaker_names={"S2": "Ana"})
    async with resources.sessions() as session:
        session.add(Diarization(job_id=job.id))
        await session.commit()
    assert await try_merge(resources, job.id) is False  # the turns are not there yet
    turns = [
        {"start": 0.2, "end": 1.6, "speaker": "S1"},
        {"start": 2.0, "end": 3.5, "speaker": "S2"},
        {"start": 10.4, "end": 12.0, "speaker": "S1"},
    ]
    async with resources.sessions() as session:
        await session.exec(
            update(Diarization)
            .where(col(Diarization.job_id) == job.id)
            .values(status=ChunkStatus.done.value, turns=turns)
        )
        await session.commit()
    assert await try_merge(resources, job.id) is True
    job, transcript = await transcript_of(resources, job.id)
    assert job.status == JobStatus.completed
    segments = transcript.segments
    assert [(s["id"], s["speaker"], s["text"]) for s in segments] == [
        (0, "S1", " Hello Ana."),
        (1, "S2", " Are you there?"),
        (2, "S1", " Yes, I am."),
    ]
    assert [w["speaker"] for s in segments for w in s["words"]] == ["S1"] * 2 + ["S2"] * 3 + [
        "S1"
    ] * 3
    doc = as_doc(job, transcript)
    assert [(s.id, s.name, s.seconds) for s in doc.speakers] == [
        ("S1", None, round(1.1 + 1.3, 3)),
        ("S2", "Ana", 1.3),
    ]
    assert render(doc, Format.txt) == "S1: Hello Ana.\nAna: Are you there?\nS1: Yes, I am.\n"
    body = json.loads(render(doc, Format.diarized_json))
    assert [s["speaker"] for s in body["segments"]] == ["S1", "Ana", "S1"]
    assert await try_merge(resources, job.id) is False  # merging twice changes nothing


async def test_a_channels_job_merges_each_channel_and_interleaves_them(
    resources: Resources,
) -> None:
    chunks = [
        chunk(0, 0, 10, stored("Good morning.", (0.2, 0.6), (0.7, 1.2)), channel=0),
        chunk(1, 10, 20, stored("Bye.", (12.0, 12.4)), channel=0),
        # The right channel starts while the left still speaks: both are kept.
        chunk(2, 0, 10, stored("Morning to you.", (1.0, 1.5), (1.6, 1.8), (1.9, 2.3)), channel=1),
        chunk(3, 10, 20, stored("See you.", (11.0, 11.3), (11.4, 11.8)), channel=1),
    ]
    job = await add_job(resources, "channels", chunks)
    assert await try_merge(resources, job.id) is True
    job, transcript = await transcript_of(resources, job.id)
    segments = transcript.segments
    assert [(s["speaker"], s["text"], s["start"]) for s in segments] == [
        ("S1", " Good morning.", 0.2),
        ("S2", " Morning to you.", 1.0),
        ("S2", " See you.", 11.0),
        ("S1", " Bye.", 12.0),
    ]
    assert [s["id"] for s in segments] == [0, 1, 2, 3]
    assert all(w["speaker"] == s["speaker"] for s in segments for w in s["words"])
    assert transcript.language == "en" and transcript.duration_s == 20
    vtt = render(as_doc(job, transcript), Format.vtt)
    assert "<v S1>Good morning." in vtt and "<v S2>Morning to you." in vtt


async def test_a_job_without_speakers_stores_no_speaker_field(resources: Resources) -> None:
    job = await add_job(
        resources, None, [chunk(0, 0, 10, stored("Just me.", (0.1, 0.4), (0.5, 0.9)))]
    )
    assert await try_merge(resources, job.id) is True
    _, transcript = await transcript_of(resources, job.id)
    assert "speaker" not in json.dumps(transcript.segments)


def channels_of(path: Path) -> list[np.ndarray]:
    """Each channel of a stereo file as 16 kHz s16 samples, decoded by PyAV."""
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=16000)
    parts: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts.extend(f.to_ndarray().reshape(-1, 2) for f in resampler.resample(frame))
        parts.extend(f.to_ndarray().reshape(-1, 2) for f in resampler.resample(None))
    both = np.concatenate(parts)
    return [np.ascontiguousarray(both[:, c]) for c in range(2)]


@pytest.mark.skipif(not STEREO.exists(), reason="../shared/media is absent")
async def test_a_real_two_channel_call_comes_out_one_speaker_per_channel(
    ctx: dict[str, Any], resources: Resources
) -> None:
    """Each channel of stereo_diarization.wav transcribed by the real model as its own
    chunk, then merged: every word on its channel's speaker, the overlap kept."""
    reference = json.loads((SHARED_MEDIA / "transcripts.json").read_text())
    expected = reference["stereo_diarization.wav"]["channels"]
    channels = channels_of(STEREO)
    seconds = len(channels[0]) / 16000
    job = await add_job(resources, "channels", [])
    async with resources.sessions() as session:
        await session.exec(update(Job).where(col(Job.id) == job.id).values(chunks_total=2))
        for c, samples in enumerate(channels):
            await resources.store.put_bytes(chunk_key(job.id, c), samples.tobytes())
            session.add(
                Chunk(
                    job_id=job.id,
                    index=c,
                    start_s=0,
                    end_s=seconds,
                    key=chunk_key(job.id, c),
                    channel=c,
                )
            )
        await session.commit()
    for c in range(2):
        assert await transcribe_chunk(ctx, {"job_id": job.id, "index": c}) == "done"
    job, transcript = await transcript_of(resources, job.id)
    assert job.status == JobStatus.completed, job.error
    said = {
        label: " ".join(
            w["word"] for s in transcript.segments for w in s["words"] if w["speaker"] == label
        )
        for label in ("S1", "S2")
    }
    assert words(said["S1"]) == words(expected["left"]), said
    assert words(said["S2"]) == words(expected["right"]), said
    first = {
        label: next(s for s in transcript.segments if s["speaker"] == label)
        for label in ("S1", "S2")
    }
    assert first["S2"]["start"] < first["S1"]["end"]  # they talk at once, and both are kept
    doc = as_doc(job, transcript)
    assert [s.id for s in doc.speakers] == ["S1", "S2"]
    by_speaker: dict[str | None, list[str]] = {
        label: [w for s in doc.segments if s.speaker == label for w in s.text.split()]
        for label in ("S1", "S2")
    }
    assert_speaker_rules(parse(render(doc, Format.vtt)), by_speaker)
    assert_speaker_rules(parse(render(doc, Format.srt), ("S1", "S2")), by_speaker)
