"""The official OpenAI SDK, unmodified, against the suite as `vtx up` runs it."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.conftest import recall
from tests.e2e.conftest import Suite


@pytest.fixture(scope="module")
def client(suite: Suite) -> OpenAI:
    # The suite is open (no keys exist): whatever key the SDK sends is ignored.
    return OpenAI(base_url=f"{suite.gateway}/v1", api_key="unused", max_retries=0, timeout=120)


def test_text_json_srt_and_vtt_come_back_as_openai_sends_them(
    client: OpenAI, speech_mp4: Path, speech_words: list[str]
) -> None:
    with speech_mp4.open("rb") as media:
        text = client.audio.transcriptions.create(
            model="whisper-1", file=media, response_format="text"
        )
    assert isinstance(text, str) and recall(speech_words, text) >= 0.85

    with speech_mp4.open("rb") as media:
        plain = client.audio.transcriptions.create(model="whisper-1", file=media)
    assert recall(speech_words, plain.text) >= 0.85

    with speech_mp4.open("rb") as media:
        srt = client.audio.transcriptions.create(
            model="whisper-1", file=media, response_format="srt"
        )
    assert re.search(r"^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n", str(srt))

    with speech_mp4.open("rb") as media:
        vtt = client.audio.transcriptions.create(
            model="whisper-1", file=media, response_format="vtt"
        )
    assert str(vtt).startswith("WEBVTT\n\n00:00:")


def test_verbose_json_has_language_duration_segments_and_words(
    client: OpenAI, speech_mp4: Path, speech_words: list[str]
) -> None:
    with speech_mp4.open("rb") as media:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=media,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
            temperature=0.0,
        )
    assert result.language == "en"
    assert 20 < result.duration < 40
    assert result.segments and result.words
    assert recall(speech_words, " ".join(w.word for w in result.words)) >= 0.85
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(w.start <= w.end for w in result.words)
    assert all(s.start <= s.end for s in result.segments)


def test_models_lists_the_default_and_its_alias(client: OpenAI) -> None:
    assert {m.id for m in client.models.list()} >= {"whisper-1", "tiny.en"}


def test_errors_come_in_openai_shape(client: OpenAI, tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))  # VTX_MAX_UPLOAD_MB=1 in this suite
    with big.open("rb") as media, pytest.raises(openai.APIStatusError) as too_big:
        client.audio.transcriptions.create(model="whisper-1", file=media)
    assert too_big.value.status_code == 413
    assert too_big.value.body["message"].startswith("The upload is larger")  # type: ignore[index]

    text = tmp_path / "talk.mp3"
    text.write_text("not audio\n" * 50)
    with text.open("rb") as media, pytest.raises(openai.UnprocessableEntityError) as unknown:
        client.audio.transcriptions.create(model="large-v9", file=media)
    assert "not offered" in unknown.value.message
    assert unknown.value.code == "invalid_value"

    with text.open("rb") as media, pytest.raises(openai.APIStatusError) as refused:
        client.audio.transcriptions.create(model="whisper-1", file=media)
    assert refused.value.status_code == 415


def test_translation_is_refused_on_an_english_only_model(client: OpenAI, speech_mp4: Path) -> None:
    with speech_mp4.open("rb") as media, pytest.raises(openai.BadRequestError) as refused:
        client.audio.translations.create(model="whisper-1", file=media)
    assert "knows only English" in refused.value.message
