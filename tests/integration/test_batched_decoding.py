"""Speech windows batched across chunks and jobs: real Redis, database and tiny.en.

The splitter's VAD is not needed here: each test finds the speech itself, groups it into
windows as the Chunk.speech contract says, and stores the chunk as the splitter does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper import decode_audio
from faster_whisper.vad import VadOptions, get_speech_timestamps

from services.transcriber.batching import Gatherer
from services.transcriber.engine import DecodeOptions, WhisperEngine, combine, layout
from services.transcriber.tasks import transcribe_chunk
from services.transcriber.windows import Window, WindowResult, cut_windows
from services.transcriber.worker import transcriber_worker
from shared.config import Settings
from shared.models import Chunk, ChunkStatus, Job, JobStatus, Transcript
from shared.pipeline import dispatch
from shared.runtime import Resources
from shared.store import chunk_key
from shared.worker import running
from tests.conftest import FIXTURES, SHARED_MEDIA, recall, words
from tests.models import whisper_base_dir

Audio = npt.NDArray[np.float32]
RATE = 16000
WINDOW_S = 30.0


def speech_windows(audio: Audio) -> list[list[list[float]]]:
    """VAD pieces grouped in order into windows of at most 30 s of speech each."""
    options = VadOptions(max_speech_duration_s=WINDOW_S, min_silence_duration_ms=160)
    windows: list[list[list[float]]] = []
    total = WINDOW_S
    for found in get_speech_timestamps(audio, options):
        start, end = found["start"] / RATE, found["end"] / RATE
        if not windows or total + (end - start) > WINDOW_S:
            windows.append([])
            total = 0.0
        windows[-1].append([start, end])
        total += end - start
    return windows


async def load(path: Path) -> Audio:
    audio: Audio = await asyncio.to_thread(decode_audio, str(path), RATE)
    return audio


async def stored_chunk(res: Resources, audio: Audio, start_s: float = 0.0) -> Job:
    """A job of one chunk, its PCM stored as the splitter stores it (int16, 16 kHz)."""
    duration = len(audio) / RATE
    job = Job(
        media_key="m",
        chunk_seconds=60,
        status=JobStatus.transcribing,
        chunks_total=1,
        duration_s=start_s + duration,
    )
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    await res.store.put_bytes(chunk_key(job.id, 0), pcm)
    speech = await asyncio.to_thread(speech_windows, audio)
    async with res.sessions() as session:
        session.add(job)
        await session.flush()  # the job row first: the chunk's foreign key needs it
        session.add(
            Chunk(
                job_id=job.id,
                index=0,
                start_s=start_s,
                end_s=start_s + duration,
                key=chunk_key(job.id, 0),
                speech=speech,
            )
        )
        await session.commit()
    return job


async def transcribed(ctx: dict[str, Any], res: Resources, job: Job) -> Chunk:
    assert await transcribe_chunk(ctx, {"job_id": job.id, "index": 0}) == "done"
    async with res.sessions() as session:
        chunk = await session.get(Chunk, (job.id, 0))
    assert chunk is not None and chunk.status == ChunkStatus.done
    return chunk


def timed_words(chunk: Chunk) -> list[tuple[str, float, float]]:
    return [(w["word"], w["start"], w["end"]) for s in chunk.segments or [] for w in s["words"]]


@pytest.fixture
async def batched(
    ctx: dict[str, Any], engine: WhisperEngine, executor: Any
) -> AsyncIterator[dict[str, Any]]:
    """The worker's ctx with a gatherer, as the transcriber's lifespan builds it."""
    async with Gatherer(engine, executor, size=8, wait_ms=200).running() as gatherer:
        yield {**ctx, "gatherer": gatherer}


async def same_alone_and_batched(
    ctx: dict[str, Any], res: Resources, ours: Audio, theirs: Audio
) -> tuple[Chunk, Chunk]:
    """Our chunk alone, then again beside another job's chunk in one model call."""
    gatherer: Gatherer = ctx["gatherer"]
    alone = await transcribed(ctx, res, await stored_chunk(res, ours))
    assert gatherer.batches == 1
    other, again = await stored_chunk(res, theirs), await stored_chunk(res, ours)
    _, shared = await asyncio.gather(transcribed(ctx, res, other), transcribed(ctx, res, again))
    assert gatherer.batches == 2  # both chunks' windows went into one call
    return alone, shared


async def test_a_chunk_gives_the_same_words_alone_and_batched_with_another_jobs_chunk(
    batched: dict[str, Any], resources: Resources, speech_words: list[str]
) -> None:
    ours = await load(FIXTURES / "speech.mp4")
    theirs = await load(FIXTURES / "german.mp3")
    alone, shared = await same_alone_and_batched(batched, resources, ours, theirs)
    assert timed_words(alone) and timed_words(alone) == timed_words(shared)
    assert alone.segments == shared.segments  # probabilities too, to the last bit
    text = " ".join(s["text"] for s in alone.segments or [])
    assert recall(speech_words, text) >= 0.85, text


async def test_words_are_timed_on_the_files_clock_inside_the_speech_found(
    batched: dict[str, Any], resources: Resources
) -> None:
    audio = await load(FIXTURES / "speech.mp4")
    job = await stored_chunk(resources, audio, start_s=120.0)
    chunk = await transcribed(batched, resources, job)
    pieces = [p for window in chunk.speech or [] for p in window]
    found = timed_words(chunk)
    assert found
    for _, start, end in found:
        assert start <= end
        middle = (start + end) / 2 - 120.0
        assert any(a - 0.5 <= middle <= b + 0.5 for a, b in pieces), (middle, pieces)
    starts = [start for _, start, _ in found]
    assert starts == sorted(starts)
    assert starts[0] >= 120.0


async def test_a_chunk_without_speech_is_done_without_a_model_call(
    batched: dict[str, Any], resources: Resources
) -> None:
    job = await stored_chunk(resources, np.zeros(5 * RATE, dtype=np.float32))
    chunk = await transcribed(batched, resources, job)
    assert chunk.speech == []
    assert chunk.segments == []
    assert batched["gatherer"].batches == 0


async def test_without_a_gatherer_a_chunks_windows_make_their_own_batch(
    ctx: dict[str, Any], resources: Resources, speech_words: list[str]
) -> None:
    chunk = await transcribed(
        ctx, resources, await stored_chunk(resources, await load(FIXTURES / "speech.mp4"))
    )
    text = " ".join(s["text"] for s in chunk.segments or [])
    assert recall(speech_words, text) >= 0.85, text


@pytest.mark.skipif(not SHARED_MEDIA.is_dir(), reason="../shared/media is absent")
async def test_real_recordings_give_the_same_words_alone_and_batched(
    batched: dict[str, Any], resources: Resources
) -> None:
    jfk = await load(SHARED_MEDIA / "jfk.flac")
    harvard = await load(SHARED_MEDIA / "harvard_list72_8k.wav")
    alone, shared = await same_alone_and_batched(batched, resources, jfk, harvard)
    assert timed_words(alone) == timed_words(shared)
    assert alone.segments == shared.segments
    heard = " ".join(word for word, _, _ in timed_words(alone))
    reference = "ask not what your country can do for you ask what you can do for your country"
    assert recall(words(reference), heard) == 1.0


def quiet_lead_in(audio: Audio, seconds: float) -> Window:
    """A window that opens on low noise: its first word ends seconds in, where
    faster-whisper's word heuristics look back at the speech before it."""
    noise = np.random.default_rng(0).normal(0, 0.002, int(seconds * RATE)).astype(np.float32)
    joined = np.concatenate([noise, audio[: 8 * RATE]])
    return Window(joined, ((0.0, len(joined) / RATE),))


def first_words(result: WindowResult) -> list[tuple[str, float, float]]:
    return [(w.word, w.start, w.end) for s in result.segments for w in s.words][:5]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (FIXTURES / "speech.mp4", FIXTURES / "german.mp3"),
        pytest.param(
            SHARED_MEDIA / "jfk.flac",
            SHARED_MEDIA / "harvard_list72_8k.wav",
            marks=pytest.mark.skipif(not SHARED_MEDIA.is_dir(), reason="../shared/media is absent"),
        ),
    ],
)
async def test_a_windows_words_do_not_depend_on_the_windows_before_it_in_the_batch(
    engine: WhisperEngine, executor: Any, ours: Path, theirs: Path
) -> None:
    """BatchedInferencePipeline carries its last word's end into the next window; here
    the window after a long one would lose its first word's start."""
    window = quiet_lead_in(await load(ours), seconds=1.0)
    other = await load(theirs)
    before = cut_windows(other, await asyncio.to_thread(speech_windows, other))
    loop = asyncio.get_running_loop()
    options = DecodeOptions()
    alone = await loop.run_in_executor(executor, engine.decode_windows, [window], options)
    batched = await loop.run_in_executor(
        executor, engine.decode_windows, [*before, window], options
    )
    assert first_words(alone[0]) and first_words(alone[0]) == first_words(batched[-1])
    assert first_words(alone[0])[0][1] > 0.5  # the lead-in is not taken for the word


async def test_jobs_held_by_one_worker_share_batches_and_complete(
    batched: dict[str, Any], resources: Resources, speech_words: list[str]
) -> None:
    """Through arq: the worker holds several chunks at once, so their windows meet."""
    speech = await load(FIXTURES / "speech.mp4")
    jobs = [await stored_chunk(resources, speech) for _ in range(3)]
    extra = {k: batched[k] for k in ("engine", "executor", "layout", "gatherer")}
    async with running(resources, "transcriber", lambda c: transcriber_worker(resources, c), extra):
        for job in jobs:
            await dispatch.transcribe(resources.queue, job.id, 0, 0, None, None, 25.0)
        for _ in range(600):
            if all([(await status_of(resources, job.id)) == JobStatus.completed for job in jobs]):
                break
            await asyncio.sleep(0.1)
    texts = []
    for job in jobs:
        async with resources.sessions() as session:
            transcript = await session.get(Transcript, job.id)
        assert transcript is not None
        texts.append(" ".join(s["text"] for s in transcript.segments))
    assert recall(speech_words, texts[0]) >= 0.85, texts[0]
    assert texts == [texts[0]] * 3
    assert batched["gatherer"].batches < 3  # at least two chunks shared a model call


async def status_of(res: Resources, job_id: str) -> str | None:
    async with res.sessions() as session:
        job = await session.get(Job, job_id)
    return job.status if job else None


@pytest.fixture(scope="module")
def base_engine() -> WhisperEngine:
    """Whisper base (multilingual) beside the default tiny.en."""
    settings = Settings(models=[str(whisper_base_dir())], transcriber_workers=1)
    return WhisperEngine(settings, layout(settings))


async def test_each_window_gets_its_own_language_and_the_same_words_as_alone(
    base_engine: WhisperEngine, executor: Any
) -> None:
    english = await load(FIXTURES / "speech.mp4")
    german = await load(FIXTURES / "german.mp3")
    windows = [
        cut_windows(a, await asyncio.to_thread(speech_windows, a))[0] for a in (english, german)
    ]
    options = DecodeOptions(model=str(whisper_base_dir()))
    loop = asyncio.get_running_loop()
    both = await loop.run_in_executor(executor, base_engine.decode_windows, windows, options)
    alone = [
        (await loop.run_in_executor(executor, base_engine.decode_windows, [w], options))[0]
        for w in windows
    ]
    assert [r.language for r in both] == ["en", "de"]
    assert [first_words(r) for r in both] == [first_words(r) for r in alone]
    heard = " ".join(s.text for s in both[1].segments)
    assert recall(words((FIXTURES / "german.txt").read_text()), heard) >= 0.4, heard
    chunk = combine(windows, both, None)
    longer = "en" if windows[0].duration > windows[1].duration else "de"
    assert chunk.language == longer


class FailsOnce:
    """The real engine, except that its first batched call without a prompt fails, as a
    lost device would."""

    def __init__(self, engine: WhisperEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self.failed = False

    def transcribe(self, audio: Audio, options: DecodeOptions) -> Any:
        return self.engine.transcribe(audio, options)

    def decode_windows(self, windows: Any, options: DecodeOptions) -> list[WindowResult]:
        if not self.failed and options.prompt is None:
            self.failed = True
            raise OSError("the device went away")
        return self.engine.decode_windows(windows, options)


async def test_a_failed_batch_retries_its_chunks_and_spares_the_others(
    ctx: dict[str, Any], engine: WhisperEngine, executor: Any, resources: Resources
) -> None:
    speech = await load(FIXTURES / "speech.mp4")
    flaky = FailsOnce(engine)
    async with Gatherer(flaky, executor, size=8, wait_ms=300).running() as gatherer:
        worker = {**ctx, "gatherer": gatherer}
        hit = [await stored_chunk(resources, speech) for _ in range(2)]
        spared = await stored_chunk(resources, speech)
        async with resources.sessions() as session:
            row = await session.get(Job, spared.id)
            assert row is not None
            row.prompt = "A recording."  # another call's options: a batch of its own
            await session.commit()
        outcomes = await asyncio.gather(
            *(transcribe_chunk(worker, {"job_id": j.id, "index": 0}) for j in [*hit, spared]),
            return_exceptions=True,
        )
        assert [type(o).__name__ for o in outcomes] == ["Retry", "Retry", "str"]
        assert outcomes[2] == "done"
        for job in hit:  # arq delivers them again
            assert (await transcribed(worker, resources, job)).attempts == 2
    assert await status_of(resources, spared.id) == JobStatus.completed


async def test_every_window_decodes_alone_as_it_does_in_any_batch(engine: WhisperEngine) -> None:
    """Word times and probabilities to the last bit, against windows of other lengths and
    texts: a batched alignment pads every text to the longest and used to move words."""
    sources = [FIXTURES / "speech.mp4", FIXTURES / "german.mp3"]
    windows = [w for path in sources for w in windows_of(await load(path))]
    assert len(windows) >= 3
    options = DecodeOptions()
    together = await asyncio.to_thread(engine.decode_windows, windows, options)
    for window, batched in zip(windows, together, strict=True):
        (alone,) = await asyncio.to_thread(engine.decode_windows, [window], options)
        assert alone.segments == batched.segments


def windows_of(audio: Audio) -> list[Window]:
    """Each speech piece a window of its own: windows of many lengths and texts."""
    pieces = speech_windows(audio)
    return cut_windows(audio, [[piece] for window in pieces for piece in window])
