"""The speech models behind a small Protocol, loaded on first use, run off the loop.

The default model loads at start-up (the readiness probe waits for it); any other
model a job chose (`VTX_MODELS`) loads the first time a chunk needs it, and at most
`VTX_MODELS_LOADED` stay in memory, the least recently used going first.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt
import structlog

from shared.config import Settings
from shared.speech_models import BUNDLED, resolve_model
from shared.transcript import Segment, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["BUNDLED", "Decode", "Engine", "EngineResult", "WhisperEngine", "resolve_model"]

log = structlog.get_logger(__name__)

Audio = npt.NDArray[np.float32]
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class EngineResult:
    language: str
    language_probability: float
    segments: list[Segment]


@dataclass(frozen=True)
class Decode:
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

    def transcribe(self, audio: Audio, options: Decode) -> EngineResult:
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


def cpu_threads(settings: Settings) -> int:
    """Threads per concurrent chunk: the cores shared out among the workers."""
    if settings.cpu_threads:
        return settings.cpu_threads
    return max(1, (os.cpu_count() or 1) // settings.workers)


def temperatures(temperature: float | None) -> tuple[float, ...]:
    """The one asked for, then Whisper's usual fallbacks above it."""
    if temperature is None:
        return FALLBACK_TEMPERATURES
    return (temperature, *(t for t in FALLBACK_TEMPERATURES if t > temperature))


class WhisperEngine:
    """faster-whisper models, each with `workers` CTranslate2 replicas for parallel chunks."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.name = settings.model
        self.device = resolve_device(settings.device)
        self.compute_type = resolve_compute_type(settings.compute_type, self.device)
        self.beam_size = settings.beam_size
        self.capacity = settings.models_loaded
        self._models: OrderedDict[str, WhisperModel] = OrderedDict()
        self._lock = threading.Lock()
        self.multilingual = bool(self.model(self.name).model.is_multilingual)

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def model(self, name: str) -> WhisperModel:
        """The model, loaded now if it is not; the least recently used one makes room."""
        with self._lock:
            found = self._models.get(name)
            if found is not None:
                self._models.move_to_end(name)
                return found
            loaded = self._load(name)
            self._models[name] = loaded
            while len(self._models) > self.capacity:
                evicted, _ = self._models.popitem(last=False)
                log.info("engine.unloaded", model=evicted)
            return loaded

    def _load(self, name: str) -> WhisperModel:
        from faster_whisper import WhisperModel

        settings = self._settings
        model = WhisperModel(
            resolve_model(name),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=cpu_threads(settings),
            num_workers=settings.workers,
            download_root=str(settings.model_dir) if settings.model_dir else None,
        )
        log.info(
            "engine.loaded",
            model=name,
            device=self.device,
            compute_type=self.compute_type,
            workers=settings.workers,
            cpu_threads=cpu_threads(settings),
        )
        return model

    def transcribe(self, audio: Audio, options: Decode) -> EngineResult:
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
