"""Facts about the machine the suite runs on, as an operator wants them in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import psutil


def disk(path: Path) -> dict[str, Any]:
    """Free space where the data folder lives (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = psutil.disk_usage(str(probe))
    return {
        "path": str(path),
        "total_bytes": usage.total,
        "free_bytes": usage.free,
        "used_percent": usage.percent,
    }


def system_facts(data_dir: Path) -> dict[str, Any]:
    memory = psutil.virtual_memory()
    load1, load5, load15 = os.getloadavg()
    return {
        "disk": disk(data_dir),
        "memory": {
            "total_bytes": memory.total,
            "available_bytes": memory.available,
            "used_percent": memory.percent,
        },
        "cpu": {"count": psutil.cpu_count(), "load": [load1, load5, load15]},
        "pyav": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
        "libraries": {name: ".".join(map(str, v)) for name, v in av.library_versions.items()},
    }
