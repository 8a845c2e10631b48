from __future__ import annotations

from pathlib import Path

from services.transcriber.engine import cpu_threads, resolve_compute_type, resolve_model
from shared.config import Settings


def test_bundled_model_resolves_to_a_ctranslate2_directory() -> None:
    path = Path(resolve_model("tiny.en"))
    assert (path / "model.bin").is_file()
    assert (path / "tokenizer.json").is_file()


def test_paths_pass_through_and_names_stay_names(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("large-v3") == "large-v3"


def test_compute_type_follows_the_device() -> None:
    assert resolve_compute_type("auto", "cpu") == "int8"
    assert resolve_compute_type("auto", "cuda") == "float16"
    assert resolve_compute_type("int8_float16", "cuda") == "int8_float16"


def test_cores_are_shared_out_among_workers() -> None:
    assert cpu_threads(Settings(cpu_threads=3)) == 3
    assert cpu_threads(Settings(transcriber_workers=64)) == 1
