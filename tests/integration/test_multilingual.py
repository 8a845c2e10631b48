"""A multilingual model (Whisper base, joined from PyPI): language detection with its
probability, translation to English, models chosen per job and kept loaded LRU."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from services.transcriber.engine import DecodeOptions, WhisperEngine, layout
from shared.config import Settings
from tests.conftest import FIXTURES, SHARED_MEDIA, recall, words
from tests.integration.conftest import gateway_for
from tests.models import whisper_base_dir

GERMAN = FIXTURES / "german.mp3"


@pytest.fixture(scope="module")
def base_model() -> str:
    return str(whisper_base_dir())


@pytest.fixture(scope="module")
def engine(base_model: str) -> WhisperEngine:
    """Two models allowed, room for one: the default tiny.en, and base on demand."""
    settings = Settings(models=[base_model], models_loaded=1, transcriber_workers=1)
    return WhisperEngine(settings, layout(settings))


def audio(path: Path, start_s: float = 0, end_s: float | None = None) -> np.ndarray:
    from faster_whisper import decode_audio

    samples = decode_audio(str(path), sampling_rate=16000)
    return samples[int(start_s * 16000) : None if end_s is None else int(end_s * 16000)]


def test_german_is_detected_with_its_probability_and_transcribed(
    engine: WhisperEngine, base_model: str
) -> None:
    result = engine.transcribe(audio(GERMAN), DecodeOptions(model=base_model))
    assert result.language == "de"
    assert result.language_probability > 0.5
    text = " ".join(s.text for s in result.segments)
    # Synthesized German through base int8 is rough (ctranslate2 4.8 hears 8 of its 17
    # words); German words at all is what tells detection and decoding agree.
    assert recall(words((FIXTURES / "german.txt").read_text()), text) >= 0.4, text


def test_german_is_translated_to_english(engine: WhisperEngine, base_model: str) -> None:
    result = engine.transcribe(audio(GERMAN), DecodeOptions(model=base_model, task="translate"))
    text = " ".join(s.text for s in result.segments).lower()
    assert {"weather", "report"} & set(words(text)), text


def test_models_load_on_first_use_and_the_least_recent_goes(
    engine: WhisperEngine, base_model: str
) -> None:
    engine.transcribe(audio(GERMAN, 0, 3), DecodeOptions(model=base_model))
    assert engine.loaded() == [base_model]  # room for one: tiny.en made way
    engine.transcribe(audio(GERMAN, 0, 3), DecodeOptions())
    assert engine.loaded() == ["tiny.en"]
    with pytest.raises(ValueError, match="only English"):
        engine.transcribe(audio(GERMAN, 0, 3), DecodeOptions(task="translate"))


@pytest.mark.media
@pytest.mark.skipif(not SHARED_MEDIA.is_dir(), reason="../shared/media is absent")
def test_english_then_german_in_a_real_recording(engine: WhisperEngine, base_model: str) -> None:
    recording = SHARED_MEDIA / "multilingual.mp3"
    first = engine.transcribe(audio(recording, 0, 10), DecodeOptions(model=base_model))
    last = engine.transcribe(audio(recording, 45, 60), DecodeOptions(model=base_model))
    assert (first.language, last.language) == ("en", "de")


@pytest.fixture
async def gateway(
    settings: Settings, base_model: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    offered = settings.model_copy(update={"models": [base_model]})
    async with gateway_for(offered) as pair:
        yield pair


async def test_the_gateway_offers_models_and_refuses_english_only_translation(
    gateway: tuple[FastAPI, httpx.AsyncClient], base_model: str
) -> None:
    _, client = gateway
    models = (await client.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == ["whisper-1", "tiny.en", base_model]
    media = GERMAN.read_bytes()
    refused = await client.post(
        "/v1/jobs", files={"file": ("de.mp3", media)}, data={"task": "translate"}
    )
    assert refused.status_code == 400
    assert "knows only English" in refused.json()["detail"]
    unknown = await client.post("/v1/jobs", files={"file": ("de.mp3", media)}, data={"model": "x"})
    assert unknown.status_code == 422
    accepted = await client.post(
        "/v1/jobs",
        files={"file": ("de.mp3", media)},
        data={"task": "translate", "model": base_model, "prompt": "Bericht, Büro"},
    )
    assert accepted.status_code == 202, accepted.text
    assert (accepted.json()["model"], accepted.json()["task"]) == (base_model, "translate")
