"""The single-process faster-whisper candidates a user could script instead of the suite.

Each runs the way a script would: one model loaded once in this process, the file
decoded with faster_whisper.decode_audio, then transcribed with word timestamps (as the
suite does); the batched pipeline with its own VAD, which its windows need.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.speech_models import resolve_model


@dataclass(frozen=True)
class Candidate:
    name: str
    beam_size: int
    batch_size: int = 0  # 0: plain WhisperModel.transcribe, else BatchedInferencePipeline


CANDIDATES = (
    Candidate("batched b=8", beam_size=5, batch_size=8),
    Candidate("transcribe beam 5", beam_size=5),
    Candidate("transcribe beam 1", beam_size=1),
)


@dataclass
class Run:
    decode_s: float
    transcribe_s: float
    text: str

    @property
    def total_s(self) -> float:
        return self.decode_s + self.transcribe_s


@dataclass
class Loaded:
    """One model in this process, as a script would hold it."""

    model: Any
    batched: Any
    device: str
    compute_type: str
    threads: int
    load_s: float
    multilingual: bool
    word_timestamps: bool = True


def load(model: str, device: str, threads: int = 0, word_timestamps: bool = True) -> Loaded:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    threads = threads or os.cpu_count() or 1
    resolved_device = device
    if device == "auto":
        import ctranslate2

        resolved_device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute_type = "float16" if resolved_device == "cuda" else "int8"
    began = time.perf_counter()
    whisper = WhisperModel(
        resolve_model(model), device=resolved_device, compute_type=compute_type, cpu_threads=threads
    )
    load_s = time.perf_counter() - began
    return Loaded(
        whisper,
        BatchedInferencePipeline(whisper),
        resolved_device,
        compute_type,
        threads,
        load_s,
        bool(whisper.model.is_multilingual),
        word_timestamps,
    )


def transcribe_audio(loaded: Loaded, candidate: Candidate, audio: Any) -> str:
    """Run one candidate over decoded 16 kHz float audio; the text, all segments consumed."""
    language = None if loaded.multilingual else "en"
    options: dict[str, Any] = {
        "language": language,
        "beam_size": candidate.beam_size,
        "word_timestamps": loaded.word_timestamps,
    }
    if candidate.batch_size:
        segments, _ = loaded.batched.transcribe(
            audio, batch_size=candidate.batch_size, vad_filter=True, **options
        )
    else:
        segments, _ = loaded.model.transcribe(audio, **options)
    return " ".join(s.text.strip() for s in segments)


def run(loaded: Loaded, candidate: Candidate, media: Path) -> Run:
    """Decode + transcribe in-process, the way a script would, timed in two parts."""
    from faster_whisper import decode_audio

    began = time.perf_counter()
    audio = decode_audio(str(media), sampling_rate=16_000)
    decoded = time.perf_counter()
    text = transcribe_audio(loaded, candidate, audio)
    return Run(decoded - began, time.perf_counter() - decoded, text)


def loop(loaded: Loaded, candidate: Candidate, files: Sequence[Path]) -> tuple[float, list[str]]:
    """A script's loop over many files with the model already loaded: seconds, texts."""
    began = time.perf_counter()
    texts = [run(loaded, candidate, path).text for path in files]
    return time.perf_counter() - began, texts


def named(name: str) -> Candidate:
    return next(c for c in CANDIDATES if c.name == name)
