from __future__ import annotations

from pathlib import Path

from services.transcriber.engine import (
    MAX_AUTO_PROCESSES,
    layout,
    resolve_compute_type,
)
from shared.config import Settings
from shared.speech_models import resolve_model


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


def test_on_cpu_each_core_gets_a_process_with_one_thread_and_beam_1() -> None:
    plan = layout(Settings(device="cpu"), cores=2)
    assert (plan.processes, plan.workers, plan.threads, plan.beam_size) == (2, 1, 1, 1)
    assert plan.compute_type == "int8"


def test_processes_are_capped_and_the_cores_shared_out() -> None:
    plan = layout(Settings(device="cpu"), cores=16)
    assert (plan.processes, plan.workers, plan.threads) == (MAX_AUTO_PROCESSES, 4, 1)


def test_on_cuda_one_process_one_chunk_beam_5() -> None:
    plan = layout(Settings(device="cuda"), cores=8)
    assert (plan.processes, plan.workers, plan.beam_size, plan.compute_type) == (
        1,
        1,
        5,
        "float16",
    )


def test_settings_win_over_the_chosen_layout() -> None:
    settings = Settings(
        device="cpu", transcriber_processes=1, transcriber_workers=2, cpu_threads=3, beam_size=4
    )
    plan = layout(settings, cores=2)
    assert (plan.processes, plan.workers, plan.threads, plan.beam_size) == (1, 2, 3, 4)
