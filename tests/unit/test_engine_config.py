from __future__ import annotations

from pathlib import Path

import pytest

from services.transcriber.engine import (
    CUDA_BATCH_UNKNOWN,
    CUDA_MAX_BATCH,
    MAX_AUTO_PROCESSES,
    gpu_free_mib,
    layout,
    resolve_compute_type,
)
from shared.config import Settings
from shared.speech_models import resolve_model, valid_name


def test_bundled_model_resolves_to_a_ctranslate2_directory() -> None:
    path = Path(resolve_model("tiny.en"))
    assert (path / "model.bin").is_file()
    assert (path / "tokenizer.json").is_file()


def test_paths_pass_through_and_names_stay_names(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("large-v3") == "large-v3"


def test_a_model_in_the_model_dir_is_found_by_its_name(tmp_path: Path) -> None:
    (tmp_path / "Systran" / "base").mkdir(parents=True)
    (tmp_path / "Systran" / "base" / "model.bin").write_bytes(b"")
    assert resolve_model("Systran/base", tmp_path) == str(tmp_path / "Systran" / "base")
    assert resolve_model("base", tmp_path) == "base"  # not there: a name to download
    assert resolve_model("../" + tmp_path.name + "/Systran/base", tmp_path).startswith("..")


@pytest.mark.parametrize(
    ("name", "ok"),
    [("base", True), ("large-v3", True), ("org/repo.v2", True), ("../x", False),
     ("a/../b", False), ("/abs", False), ("a/b/c", False), ("", False), (".hidden", False)],
)  # fmt: skip
def test_model_names_stay_inside_the_model_dir(name: str, ok: bool) -> None:
    assert valid_name(name) is ok


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
    plan = layout(Settings(device="cuda"), cores=8, free_mib=lambda: None)
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


def no_gpu_probe() -> int | None:
    raise AssertionError("the GPU was asked for its memory although nothing needed it")


def test_on_cpu_batches_of_8_and_enough_chunks_held_to_fill_them() -> None:
    plan = layout(Settings(device="cpu"), cores=2, free_mib=no_gpu_probe)
    assert (plan.batch_size, plan.chunks_held, plan.workers) == (8, 4, 1)


def test_on_cuda_the_batch_comes_from_the_free_gpu_memory() -> None:
    roomy = layout(Settings(device="cuda"), cores=8, free_mib=lambda: 8192)
    assert (roomy.processes, roomy.batch_size, roomy.chunks_held) == (1, 13, 7)
    assert layout(Settings(device="cuda"), free_mib=lambda: 81920).batch_size == CUDA_MAX_BATCH
    assert layout(Settings(device="cuda"), free_mib=lambda: 2048).batch_size == 1


def test_on_cuda_unknown_free_memory_gives_the_default_batch() -> None:
    plan = layout(Settings(device="cuda"), free_mib=lambda: None)
    assert plan.batch_size == CUDA_BATCH_UNKNOWN


def test_the_batch_size_setting_wins_and_the_gpu_is_not_asked() -> None:
    assert layout(Settings(device="cuda", batch_size=3), free_mib=no_gpu_probe).batch_size == 3
    cpu = layout(Settings(device="cpu", batch_size=16), cores=2, free_mib=no_gpu_probe)
    assert (cpu.batch_size, cpu.chunks_held) == (16, 8)


def test_free_memory_is_read_from_nvidia_smi_and_its_absence_is_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 7680\necho 1024\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_free_mib() == 7680
    fake.unlink()
    assert gpu_free_mib() is None
