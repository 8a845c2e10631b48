"""How many cores this process may really use: affinity and a container's CPU quota,
not the host's core count (a pod limited to 2 CPUs on a 64-core node has 2)."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def quota_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """cgroup v2 `cpu.max` ("max 100000" or "200000 100000"), rounded up; None: no quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def available_cores() -> int:
    counts = [len(os.sched_getaffinity(0)), os.cpu_count() or 1]
    quota = quota_cores()
    if quota is not None:
        counts.append(quota)
    return max(1, min(counts))
