"""The official OpenAI SDK, unmodified, against the suite as `vtx up` runs it."""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import av
import httpx
import openai
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import recall
from tests.e2e.conftest import Suite
from tests.e2e.harness import Cluster
from tests.subtitle_rules import assert_rules, parse

pytestmark = pytest.mark.one_database


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


def test_documented_fields_vtx_has_no_use_for_are_accepted_and_ignored(
    client: OpenAI, speech_mp4: Path, speech_words: list[str]
) -> None:
    with speech_mp4.open("rb") as media:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=media,
            stream=False,
            include=["logprobs"],
            chunking_strategy={"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300},
            known_speaker_names=["agent"],
            known_speaker_references=["data:audio/wav;base64,UklGRg=="],
            extra_body={"chunking_strategy[silence_duration_ms]": 500},
        )
    assert recall(speech_words, result.text) >= 0.85


def test_a_field_outside_openais_api_is_refused_by_name(client: OpenAI, speech_mp4: Path) -> None:
    with speech_mp4.open("rb") as media, pytest.raises(openai.UnprocessableEntityError) as refused:
        client.audio.transcriptions.create(
            model="whisper-1", file=media, extra_body={"chunk_seconds": "30"}
        )
    assert "'chunk_seconds' is not one this endpoint takes" in refused.value.message
    assert refused.value.code == "invalid_value"


def _long_speech(path: Path, speech: Path, times: int) -> Path:
    """The speech fixture's audio `times` over, as a small mono MP3 (minutes of work)."""
    with av.open(str(speech)) as source, av.open(str(path), "w") as out:
        stream = out.add_stream("libmp3lame", rate=16000, layout="mono")
        stream.bit_rate = 32000
        resampler = av.AudioResampler(format="s16p", layout="mono", rate=16000)
        frames = [f for frame in source.decode(audio=0) for f in resampler.resample(frame)]
        pts = 0
        for _ in range(times):
            for frame in frames:
                frame.pts = pts
                pts += frame.samples
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _waiting(suite: Suite) -> float:
    text = httpx.get(f"{suite.gateway}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "vtx_openai_waiting":
            return sum(sample.value for sample in family.samples)
    raise AssertionError("the gateway exports no vtx_openai_waiting")


def _until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)


def test_a_client_that_hangs_up_ends_its_wait_and_the_job_goes_on(
    suite: Suite, speech_mp4: Path, tmp_path: Path
) -> None:
    media = _long_speech(tmp_path / "long.mp3", speech_mp4, times=6).read_bytes()
    name = f"gone-{uuid.uuid4().hex}.mp3"
    boundary = "vtx-gone"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: audio/mpeg\r\n\r\n"
        ).encode()
        + media
        + f"\r\n--{boundary}--\r\n".encode()
    )
    address = urlsplit(suite.gateway)
    assert address.hostname is not None and address.port is not None
    assert _waiting(suite) == 0
    with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
        sock.sendall(
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        _until("the request waits for its transcript", lambda: _waiting(suite) == 1, 120)
    # The socket is closed: the gateway must notice and stop waiting, long before the
    # minutes of audio are transcribed.
    _until("the wait ended after the client left", lambda: _waiting(suite) == 0, 15)
    jobs = httpx.get(f"{suite.gateway}/v1/jobs", params={"limit": 50}).json()["items"]
    job = next(j for j in jobs if j["filename"] == name)
    assert job["status"] != "completed", "the job ended first: this proves nothing"
    _until("the gateway logged the departure", lambda: job["id"] in _gone_lines(suite), 15)
    assert suite.wait_for(job["id"], timeout=600)["status"] == "completed"
    suite.assert_healthy()


def _gone_lines(suite: Suite) -> str:
    log = suite.log.read_text(errors="replace")
    return "\n".join(line for line in log.splitlines() if "openai.client_gone" in line)


def test_vad_may_be_turned_off_on_both_openai_endpoints(
    suite: Suite, client: OpenAI, speech_mp4: Path, speech_words: list[str]
) -> None:
    name = f"{uuid.uuid4().hex}.mp4"
    with speech_mp4.open("rb") as media:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=(name, media), extra_body={"vad": False}
        )
    assert recall(speech_words, result.text) >= 0.85
    jobs = httpx.get(f"{suite.gateway}/v1/jobs?limit=200").json()["items"]
    assert [(j["vad"], j["status"]) for j in jobs if j["filename"] == name] == [
        (False, "completed")
    ]
    # Translation is refused on this English-only model for its own reason, not for `vad`.
    with speech_mp4.open("rb") as media, pytest.raises(openai.BadRequestError) as refused:
        client.audio.translations.create(model="whisper-1", file=media, extra_body={"vad": True})
    assert "knows only English" in refused.value.message
    with speech_mp4.open("rb") as media, pytest.raises(openai.UnprocessableEntityError) as bad:
        client.audio.transcriptions.create(
            model="whisper-1", file=media, extra_body={"vad": "sometimes"}
        )
    assert "vad: 'sometimes' is not a boolean" in bad.value.message


def test_srt_and_vtt_follow_the_subtitle_rules_asked_in_the_form(
    client: OpenAI, speech_mp4: Path
) -> None:
    with speech_mp4.open("rb") as media:
        verbose = client.audio.transcriptions.create(
            model="whisper-1",
            file=media,
            response_format="verbose_json",
            timestamp_granularities=["word"],
        )
    words = [w.word for w in verbose.words or []]
    asked = {"max_line_width": "24", "max_line_count": "1", "max_cue_seconds": "3"}
    for fmt in ("srt", "vtt"):
        for rules, limits in (({}, {}), (asked, {"width": 24, "count": 1, "longest": 3.0})):
            with speech_mp4.open("rb") as media:
                body = client.audio.transcriptions.create(
                    model="whisper-1", file=media, response_format=fmt, extra_body=rules
                )
            assert_rules(parse(str(body)), words, **limits)  # type: ignore[arg-type]


def test_subtitle_rules_out_of_range_are_refused_by_name(client: OpenAI, speech_mp4: Path) -> None:
    for field, value in (("max_line_width", "500"), ("max_cue_seconds", "inf")):
        with speech_mp4.open("rb") as media, pytest.raises(openai.UnprocessableEntityError) as bad:
            client.audio.transcriptions.create(
                model="whisper-1", file=media, response_format="srt", extra_body={field: value}
            )
        assert bad.value.param == field
        assert field in bad.value.message


def test_speakers_without_a_speakers_worker_are_a_503_the_sdk_does_not_retry(
    gateway_alone: Cluster, speech_mp4: Path
) -> None:
    sent: list[str] = []
    hooks = {"request": [lambda request: sent.append(request.url.path)]}
    with openai.DefaultHttpxClient(event_hooks=hooks, timeout=60) as http:
        retrying = OpenAI(
            base_url=f"{gateway_alone.gateway}/v1",
            api_key="unused",
            max_retries=3,
            http_client=http,
        )
        with speech_mp4.open("rb") as media, pytest.raises(openai.InternalServerError) as no:
            retrying.audio.transcriptions.create(
                model="whisper-1",
                file=media,
                extra_body={"speakers": "auto", "min_speakers": 2, "max_speakers": 3},
            )
    assert no.value.status_code == 503
    assert no.value.code == "service_unavailable"
    assert "no speakers worker is running" in no.value.message
    assert "pip install 'vtx[speakers]'" in no.value.message
    assert sent == ["/v1/audio/transcriptions"]  # X-Should-Retry: false, honoured


def test_impossible_speakers_are_refused_by_name_through_the_sdk(
    client: OpenAI, speech_mp4: Path
) -> None:
    with speech_mp4.open("rb") as media, pytest.raises(openai.UnprocessableEntityError) as bad:
        client.audio.transcriptions.create(
            model="whisper-1",
            file=media,
            extra_body={"speakers": "auto", "min_speakers": 9, "max_speakers": 2},
        )
    assert bad.value.code == "invalid_value"
    assert bad.value.body["param"] == "min_speakers"  # type: ignore[index]
    assert "min_speakers (9) is more than max_speakers (2)" in bad.value.message
