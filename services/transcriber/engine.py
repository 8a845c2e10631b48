"""The speech models behind a small Protocol, loaded on first use, run off the loop.

The default model loads at start-up (the readiness probe waits for it); any other
model a job chose (`VTX_MODELS`) loads the first time a chunk needs it, and at most
`VTX_MODELS_LOADED` stay in memory, the least recently used going first.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt
import structlog

from shared.config import Settings
from shared.machine import available_cores
from shared.speech_models import resolve_model
from shared.transcript import Segment, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel


log = structlog.get_logger(__name__)

Audio = npt.NDArray[np.float32]
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class EngineResult:
    language: str
    language_probability: float
    segments: list[Segment]


@dataclass(frozen=True)
class DecodeOptions:
    """How one job wants its audio decoded; every field optional."""

    language: str | None = None
    model: str | None = None  # None: the server's default model
    task: str = "transcribe"  # or "translate" (to English)
    prompt: str | None = None
    temperature: float | None = None


class Engine(Protocol):
    """What the transcriber needs of a model; a fake one serves the unit tests."""

    name: str
    device: str
    compute_type: str

    def transcribe(self, audio: Audio, options: DecodeOptions) -> EngineResult:
        """Blocking: call it from a worker thread, never on the event loop."""
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


@dataclass(frozen=True)
class Layout:
    """How the transcriber spreads over the machine.

    Measured with `make bench` on 2 cores (tiny.en, int8): two processes of one 1-thread
    worker each ran 1.27x the best single faster-whisper process, one process with two
    CTranslate2 workers only 1.02x (what a chunk does in Python holds the GIL); and
    beam 1 was as accurate as beam 5 on CPU at two thirds of the time. So on CPU: one
    process per core (each holds its own model, hence the cap), beam 1; on CUDA: one
    process, one chunk at a time, beam 5.
    """

    device: str
    compute_type: str
    processes: int
    workers: int
    threads: int
    beam_size: int


def layout(settings: Settings, cores: int | None = None) -> Layout:
    """Settings win; what they leave at 0 is chosen for the device and the cores."""
    device = resolve_device(settings.device)
    cores = cores or available_cores()
    gpu = device == "cuda"
    processes = settings.transcriber_processes or (1 if gpu else min(cores, MAX_AUTO_PROCESSES))
    workers = settings.transcriber_workers or (1 if gpu else max(1, cores // processes))
    return Layout(
        device=device,
        compute_type=resolve_compute_type(settings.compute_type, device),
        processes=processes,
        workers=workers,
        threads=settings.cpu_threads or max(1, cores // (processes * workers)),
        beam_size=settings.beam_size or (5 if gpu else 1),
    )


def temperatures(temperature: float | None) -> tuple[float, ...]:
    """Deterministic unless asked otherwise: the same audio gives the same words, which
    is what makes a retried or twice-delivered chunk harmless. Whisper's fallbacks to
    sampling start only from a temperature a request chose."""
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
            resolve_model(name),
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
