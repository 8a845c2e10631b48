from __future__ import annotations

from pathlib import Path

from shared.machine import available_cores, quota_cores


def test_a_container_quota_rounds_up_to_whole_cores(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert quota_cores(cpu_max) == 2
    cpu_max.write_text("50000 100000\n")
    assert quota_cores(cpu_max) == 1


def test_no_quota_or_no_cgroup_means_no_limit(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert quota_cores(cpu_max) is None
    assert quota_cores(tmp_path / "absent") is None


def test_available_cores_is_at_least_one() -> None:
    assert available_cores() >= 1
