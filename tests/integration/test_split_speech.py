"""The split task with voice activity: real media through PyAV, the real silero model.

Cuts land in pauses, each chunk's windows cover its speech on the chunk's clock,
none is longer than one encoder input, and a job without VAD stores no windows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.splitter.chunking import FRAME, SAMPLE_RATE, Samples
from services.splitter.decode import decode_pcm
from services.splitter.tasks import split_job
from services.transcriber.engine import DecodeOptions, WhisperEngine
from shared.models import Chunk
from shared.runtime import Resources
from tests.conftest import SHARED_MEDIA, recall, words
from tests.integration.test_pipeline import chunks_of, submit


async def decoded(path: Path) -> Samples:
    return await asyncio.to_thread(lambda: np.concatenate(list(decode_pcm(path, 3600))))


def frame_energy(pcm: Samples) -> np.ndarray:
    n = len(pcm) // FRAME
    return (pcm[: n * FRAME].astype(np.float64).reshape(n, FRAME) ** 2).mean(axis=1)


def loudness(energy: np.ndarray) -> float:
    """The median energy of frames that are clearly sounding: speech's level."""
    return float(np.median(energy[energy > energy.max() * 0.01]))


def on_file_clock(chunks: list[Chunk]) -> list[tuple[float, float]]:
    return [(c.start_s + a, c.start_s + b) for c in chunks for w in c.speech or [] for a, b in w]


def check_shape(chunks: list[Chunk]) -> None:
    """The contract of `Chunk.speech`: windows of sorted, disjoint pieces, at most 30 s."""
    for c in chunks:
        assert c.speech is not None
        pieces = [p for w in c.speech for p in w]
        assert all(0 <= a < b <= c.end_s - c.start_s + 1e-9 for a, b in pieces)
        assert all(b <= a2 for (_, b), (a2, _) in itertools.pairwise(pieces))
        assert all(sum(b - a for a, b in w) <= 30 for w in c.speech)
        assert all(w for w in c.speech)


async def split_speech(
    ctx: dict[str, Any], res: Resources, path: Path, **fields: Any
) -> list[Chunk]:
    job = await submit(res, path, **fields)
    assert await split_job(ctx, {"job_id": job.id}) == "split"
    return await chunks_of(res, job.id)


async def test_cuts_fall_in_pauses_and_windows_cover_the_sentences(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    chunks = await split_speech(ctx, resources, speech_mp4)
    assert len(chunks) == 3  # 25.7 s in chunks of about 10 s
    check_shape(chunks)
    energy = frame_energy(await decoded(speech_mp4))
    level = loudness(energy)
    for c in chunks[1:]:  # the cut: 200 ms around it are a pause between sentences
        at = round(c.start_s * SAMPLE_RATE) // FRAME
        assert energy[at - 5 : at + 5].mean() < 0.01 * level
    pieces = on_file_clock(chunks)
    sounding = np.flatnonzero(energy > 0.01 * level) * FRAME / SAMPLE_RATE + 0.01
    covered = [any(a <= t <= b for a, b in pieces) for t in sounding]
    assert np.mean(covered) >= 0.99
    # Six sentences, one window or more each chunk; the pauses are left out.
    assert sum(b - a for a, b in pieces) < chunks[-1].end_s - 2.0


async def test_a_second_split_of_the_same_file_gives_the_same_windows(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    first = await split_speech(ctx, resources, speech_mp4)
    again = await split_speech(ctx, resources, speech_mp4)
    assert [(c.start_s, c.end_s, c.speech) for c in first] == [
        (c.start_s, c.end_s, c.speech) for c in again
    ]


async def test_a_job_without_vad_stores_no_windows(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path
) -> None:
    chunks = await split_speech(ctx, resources, speech_mp4, vad=False)
    assert len(chunks) == 3
    assert all(c.speech is None for c in chunks)


async def test_a_file_shorter_than_a_chunk_is_one_chunk_with_its_windows(
    ctx: dict[str, Any], resources: Resources, speech_mp4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resources.settings, "chunk_seconds", 60)
    chunks = await split_speech(ctx, resources, speech_mp4)
    assert len(chunks) == 1
    check_shape(chunks)
    assert len(chunks[0].speech or []) == 1  # 23 s of speech: one encoder input


HARVARD = SHARED_MEDIA / "harvard_list72_8k.wav"


@pytest.mark.skipif(not HARVARD.exists(), reason="../shared/media is not here")
async def test_real_speech_windows_hold_every_sentence(
    ctx: dict[str, Any], resources: Resources, engine: WhisperEngine
) -> None:
    chunks = await split_speech(ctx, resources, HARVARD)
    assert len(chunks) >= 3
    check_shape(chunks)
    pcm = await decoded(HARVARD)
    energy = frame_energy(pcm)
    for c in chunks[1:]:
        at = round(c.start_s * SAMPLE_RATE) // FRAME
        assert energy[at - 5 : at + 5].mean() < 0.01 * loudness(energy)
    audio = pcm.astype(np.float32) / 32768.0
    texts = []
    for c in chunks:
        for window in c.speech or []:
            spans = [
                (round((c.start_s + a) * SAMPLE_RATE), round((c.start_s + b) * SAMPLE_RATE))
                for a, b in window
            ]
            joined = np.concatenate([audio[a:b] for a, b in spans])
            result = await asyncio.to_thread(
                engine.transcribe, joined, DecodeOptions(language="en")
            )
            texts += [s.text for s in result.segments]
    reference = json.loads((SHARED_MEDIA / "transcripts.json").read_text())[HARVARD.name]["text"]
    assert recall(words(reference), " ".join(texts)) >= 0.9
