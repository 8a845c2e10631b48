"""The speech models behind a small Protocol, loaded on first use, run off the loop.

The default model loads at start-up (the readiness probe waits for it); any other
model a job chose (`VTX_MODELS`) loads the first time a chunk needs it, and at most
`VTX_MODELS_LOADED` stay in memory, the least recently used going first.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from services.transcriber.windows import Audio, Request, Window, WindowResult, decode_batch
from shared.config import Settings
from shared.machine import available_cores
from shared.speech_models import resolve_model
from shared.transcript import Segment, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel


log = structlog.get_logger(__name__)

FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class EngineResult:
    language: str | None  # None: a chunk without speech, language not given
    language_probability: float | None
    segments: list[Segment]


@dataclass(frozen=True)
class DecodeOptions:
    """How one job wants its audio decoded; every field optional."""

    language: str | None = None
    model: str | None = None  # None: the server's default model
    task: str = "transcribe"  # or "translate" (to English)
    prompt: str | None = None
    hotwords: str | None = None
    temperature: float | None = None


class Engine(Protocol):
    """What the transcriber needs of a model; a fake one serves the unit tests."""

    name: str
    device: str
    compute_type: str

    def transcribe(self, audio: Audio, options: DecodeOptions) -> EngineResult:
        """Blocking: call it from a worker thread, never on the event loop."""
        ...

    def decode_windows(
        self, windows: Sequence[Window], options: DecodeOptions
    ) -> list[WindowResult]:
        """Blocking: every window in one batched model call, results in the same order."""
        ...


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


MAX_AUTO_PROCESSES = 4
CPU_BATCH = 8
CUDA_BATCH_UNKNOWN = 8
CUDA_MAX_BATCH = 32
CUDA_RESERVED_MIB = 3072  # the weights and workspace of the largest model, float16
CUDA_MIB_PER_WINDOW = 384  # one more window of encoder output and beams, float16
WINDOWS_PER_CHUNK = 2  # a 60-s chunk of speech is two or three 30-s windows


@dataclass(frozen=True)
class Layout:
    """How the transcriber spreads over the machine.

    Measured with `make bench` on 2 cores (tiny.en, int8): two processes of one 1-thread
    worker each ran 1.27x the best single faster-whisper process, one process with two
    CTranslate2 workers only 1.02x (what a chunk does in Python holds the GIL); and
    beam 1 was as accurate as beam 5 on CPU at two thirds of the time. So on CPU: one
    process per core (each holds its own model, hence the cap), beam 1, batches of 8
    speech windows; on CUDA: one process, beam 5, batches as large as the free GPU
    memory holds. Each process holds enough chunks at once (`chunks_held`, arq's
    max_jobs) to fill its batches: batches run one at a time, on one model replica.
    """

    device: str
    compute_type: str
    processes: int
    workers: int
    threads: int
    beam_size: int
    batch_size: int
    chunks_held: int


def gpu_free_mib() -> int | None:
    """Free memory of the first GPU, in MiB; None when nvidia-smi cannot tell."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def cuda_batch(free_mib: int | None) -> int:
    """What is left of the GPU after the model, shared out in windows."""
    if free_mib is None:
        return CUDA_BATCH_UNKNOWN
    spare = (free_mib - CUDA_RESERVED_MIB) // CUDA_MIB_PER_WINDOW
    return max(1, min(CUDA_MAX_BATCH, spare))


def layout(
    settings: Settings,
    cores: int | None = None,
    free_mib: Callable[[], int | None] = gpu_free_mib,
) -> Layout:
    """Settings win; what they leave at 0 is chosen for the device and the cores.

    The GPU is asked for its free memory only when the batch size is left to the code."""
    device = resolve_device(settings.device)
    cores = cores or available_cores()
    gpu = device == "cuda"
    processes = settings.transcriber_processes or (1 if gpu else min(cores, MAX_AUTO_PROCESSES))
    workers = settings.transcriber_workers or (1 if gpu else max(1, cores // processes))
    batch = settings.batch_size or (cuda_batch(free_mib()) if gpu else CPU_BATCH)
    return Layout(
        device=device,
        compute_type=resolve_compute_type(settings.compute_type, device),
        processes=processes,
        workers=workers,
        threads=settings.cpu_threads or max(1, cores // (processes * workers)),
        beam_size=settings.beam_size or (5 if gpu else 1),
        batch_size=batch,
        chunks_held=max(workers, math.ceil(batch / WINDOWS_PER_CHUNK)),
    )


def temperatures(temperature: float | None) -> tuple[float, ...]:
    """Deterministic unless asked otherwise: the same audio gives the same words, which
    is what makes a retried or twice-delivered chunk harmless. Whisper's fallbacks to
    sampling start only from a temperature a request chose. Batched windows use only the
    first: a request's temperature, with no fallback (as `BatchedInferencePipeline`)."""
    if temperature is None:
        return (0.0,)
    return (temperature, *(t for t in FALLBACK_TEMPERATURES if t > temperature))


class WhisperEngine:
    """faster-whisper models, each with `workers` CTranslate2 replicas for parallel chunks."""

    def __init__(self, settings: Settings, plan: Layout) -> None:
        self._settings = settings
        self.plan = plan
        self.name = settings.model
        self.device = plan.device
        self.compute_type = plan.compute_type
        self.beam_size = plan.beam_size
        self.capacity = settings.models_loaded
        self._models: OrderedDict[str, WhisperModel] = OrderedDict()
        self._loading: dict[str, Future[WhisperModel]] = {}
        self._lock = threading.Lock()
        self.multilingual = bool(self.model(self.name).model.is_multilingual)

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def model(self, name: str) -> WhisperModel:
        """The model, loaded now if it is not; the least recently used one makes room.

        The lock only guards the tables: a load (seconds, or minutes for a download)
        happens outside it, so chunks of models already loaded never wait for one, and
        a second chunk asking for the model being loaded waits for that same load."""
        with self._lock:
            found = self._models.get(name)
            if found is not None:
                self._models.move_to_end(name)
                return found
            pending = self._loading.get(name)
            loader = pending is None
            if pending is None:
                pending = self._loading[name] = Future()
        if not loader:
            return pending.result()
        try:
            loaded = self._load(name)
        except BaseException as exc:
            with self._lock:
                del self._loading[name]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._loading[name]
            self._models[name] = loaded
            while len(self._models) > self.capacity:
                evicted, _ = self._models.popitem(last=False)
                log.info("engine.unloaded", model=evicted)
        pending.set_result(loaded)
        return loaded

    def _load(self, name: str) -> WhisperModel:
        from faster_whisper import WhisperModel

        model_dir = self._settings.model_dir
        model = WhisperModel(
            resolve_model(name, model_dir),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.plan.threads,
            num_workers=self.plan.workers,
            download_root=str(model_dir) if model_dir else None,
        )
        log.info("engine.loaded", model=name, **dataclasses.asdict(self.plan))
        return model

    def transcribe(self, audio: Audio, options: DecodeOptions) -> EngineResult:
        model = self.model(options.model or self.name)
        language = options.language
        if not model.model.is_multilingual:
            if options.task == "translate":
                raise ValueError(
                    f"The model '{options.model or self.name}' knows only English: "
                    "it cannot translate."
                )
            language = "en"
        segments, info = model.transcribe(
            audio,
            language=language,
            task=options.task,
            beam_size=self.beam_size,
            word_timestamps=True,
            initial_prompt=options.prompt or None,
            hotwords=options.hotwords or None,
            temperature=list(temperatures(options.temperature)),
        )
        out = [
            Segment(
                id=i,
                start=s.start,
                end=s.end,
                text=s.text,
                words=[
                    Word(start=w.start, end=w.end, word=w.word, probability=w.probability)
                    for w in s.words or []
                ],
            )
            for i, s in enumerate(segments)
        ]
        return EngineResult(info.language, info.language_probability, out)

    def decode_windows(
        self, windows: Sequence[Window], options: DecodeOptions
    ) -> list[WindowResult]:
        model = self.model(options.model or self.name)
        return decode_batch(model, windows, self.request(options, model.model.is_multilingual))

    def request(self, options: DecodeOptions, multilingual: bool) -> Request:
        if not multilingual and options.task == "translate":
            raise ValueError(
                f"The model '{options.model or self.name}' knows only English: it cannot translate."
            )
        return Request(
            language=options.language if multilingual else "en",
            task=options.task,
            prompt=options.prompt or None,
            hotwords=options.hotwords or None,
            temperature=temperatures(options.temperature)[0],
            beam_size=self.beam_size,
        )


def combine(
    windows: Sequence[Window], results: Sequence[WindowResult], language: str | None
) -> EngineResult:
    """A chunk's windows as one result: segments in order, and the language given, else
    the one detected over most of the chunk's speech."""
    segments = [
        seg.model_copy(update={"id": i})
        for i, seg in enumerate(s for r in results for s in r.segments)
    ]
    if not results:
        return EngineResult(language, None, segments)
    speech: dict[str, float] = defaultdict(float)
    confidence: dict[str, float] = defaultdict(float)
    for window, result in zip(windows, results, strict=True):
        speech[result.language] += window.duration
        confidence[result.language] += window.duration * result.language_probability
    best = max(speech, key=lambda lang: speech[lang])
    return EngineResult(best, round(confidence[best] / max(speech[best], 1e-9), 4), segments)
