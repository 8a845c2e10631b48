"""`vtx transcribe` against the running suite, as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import SHARED_MEDIA, recall
from tests.e2e.conftest import Suite
from tests.e2e.harness import Cluster
from tests.subtitle_rules import assert_rules, parse, words_of

pytestmark = pytest.mark.one_database

HOTWORDS_MP3 = SHARED_MEDIA / "hotwords.mp3"


def test_vtx_transcribe_writes_subtitles_and_draws_progress(
    suite: Suite, speech_mp4: Path, speech_words: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "talk.srt"
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(speech_mp4),
         "--server", suite.gateway, "--format", "srt", "-o", str(out)],
        capture_output=True, text=True, timeout=180, env=suite.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "transcribing speech.mp4" in result.stderr and "100.0%" in result.stderr
    text = out.read_text()
    assert text.startswith("1\n00:00:")
    assert recall(speech_words, text) >= 0.85


def test_vtx_transcribe_reports_a_refusal(suite: Suite, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("plain text")
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(fake), "--server", suite.gateway],
        capture_output=True, text=True, timeout=60, env=suite.env,
    )  # fmt: skip
    assert result.returncode == 1
    assert "415" in result.stderr and "not audio or video" in result.stderr


def test_vtx_transcribe_no_vad_reaches_the_job(
    suite: Suite, speech_mp4: Path, speech_words: list[str], tmp_path: Path
) -> None:
    named = tmp_path / f"novad-{tmp_path.name}.mp4"
    named.write_bytes(speech_mp4.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(named),
         "--server", suite.gateway, "--no-vad"],
        capture_output=True, text=True, timeout=180, env=suite.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert recall(speech_words, result.stdout) >= 0.85
    jobs = httpx.get(f"{suite.gateway}/v1/jobs?limit=200").json()["items"]
    assert [j["vad"] for j in jobs if j["filename"] == named.name] == [False]


def test_vtx_transcribe_cuts_subtitles_by_the_rules_asked(
    suite: Suite, speech_mp4: Path, tmp_path: Path
) -> None:
    named = tmp_path / f"rules-{tmp_path.name}.mp4"
    named.write_bytes(speech_mp4.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(named), "--server",
         suite.gateway, "-f", "vtt", "--max-line-width", "16", "--max-line-count", "1",
         "--max-cue-seconds", "2"],
        capture_output=True, text=True, timeout=180, env=suite.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    jobs = httpx.get(f"{suite.gateway}/v1/jobs?limit=200").json()["items"]
    [job_id] = [j["id"] for j in jobs if j["filename"] == named.name]
    doc = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}/transcript").json()
    assert_rules(parse(result.stdout), words_of(doc), width=16, count=1, longest=2)


def test_vtx_transcribe_refuses_a_rule_out_of_range_before_uploading(
    suite: Suite, speech_mp4: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(speech_mp4),
         "--server", suite.gateway, "--max-line-count", "0"],
        capture_output=True, text=True, timeout=60, env=suite.env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--max-line-count" in result.stderr


@pytest.mark.skipif(not HOTWORDS_MP3.is_file(), reason="hotwords.mp3 is absent")
def test_vtx_transcribe_hotwords_reach_the_model(suite: Suite, tmp_path: Path) -> None:
    named = tmp_path / f"hot-{tmp_path.name}.mp3"
    named.write_bytes(HOTWORDS_MP3.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(named),
         "--server", suite.gateway, "--language", "en", "--hotwords", "ComfyUI"],
        capture_output=True, text=True, timeout=180, env=suite.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ComfyUI") == 2, result.stdout
    jobs = httpx.get(f"{suite.gateway}/v1/jobs?limit=200").json()["items"]
    assert [j["hotwords"] for j in jobs if j["filename"] == named.name] == ["ComfyUI"]


def test_vtx_models_list_names_the_model_the_transcriber_loaded(suite: Suite) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "models", "list", "--json"],
        capture_output=True, text=True, timeout=60, env=suite.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["transcriber_reached"] is True
    loaded = [m["name"] for m in document["models"] if m["loaded"]]
    assert loaded == ["tiny.en"]


def test_vtx_transcribe_speakers_without_the_service_says_what_to_install(
    gateway_alone: Cluster, speech_mp4: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(speech_mp4),
         "--server", gateway_alone.gateway, "--speakers", "auto", "--max-speakers", "3"],
        capture_output=True, text=True, timeout=60, env=gateway_alone.env,
    )  # fmt: skip
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "refused (503)" in said and "pip install 'vtx[speakers]'" in said, result.stderr


def test_vtx_transcribe_checks_speakers_before_uploading(suite: Suite, speech_mp4: Path) -> None:
    for args, says in (
        (["--speakers", "lots"], "takes auto, off, or a number"),
        (["--speakers", "auto", "--max-speakers", "0"], "--max-speakers"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "transcribe", str(speech_mp4),
             "--server", suite.gateway, *args],
            capture_output=True, text=True, timeout=60, env=suite.env,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert says in " ".join(result.stderr.split()), result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(speech_mp4),
         "--server", suite.gateway, "--speakers", "21"],
        capture_output=True, text=True, timeout=60, env=suite.env,
    )  # fmt: skip
    assert result.returncode == 1  # the server's limit: VTX_MAX_SPEAKERS
    assert "21 is not from 1 to 20" in " ".join(result.stderr.split()), result.stderr
