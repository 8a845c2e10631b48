"""`vtx models ...`: which speech models this machine holds, and getting more of them.

Models live as plain CTranslate2 folders in VTX_MODEL_DIR (`base`, `org/repo`), where
the transcriber finds them by name and loads them with no network call. A pull or an
import fills a hidden folder first and renames it into place, so a folder under its
own name is always complete.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from services.cli import base_model
from shared.config import Settings
from shared.speech_models import (
    BUNDLED,
    LocalModel,
    allowed,
    bundled_path,
    cached_models,
    is_multilingual,
    missing_files,
    stored_models,
    valid_name,
)

console = Console(stderr=True, soft_wrap=True)
HEALTH_TIMEOUT_S = 3.0


class Refusal(Exception):
    """Why a pull or an import did not happen, for the operator to read."""


def listing(settings: Settings, as_json: bool, transcriber: str | None) -> int:
    """Every model known here: on disk, offered by configuration, loaded by a transcriber."""
    loaded = loaded_model(transcriber or settings.service_urls()["transcriber"])
    rows = [_row(settings, m, loaded) for m in local_models(settings)]
    known = {r["name"] for r in rows}
    remote = [LocalModel(n, "download", Path()) for n in allowed(settings) if n not in known]
    rows += [_row(settings, m, loaded) for m in remote]
    if as_json:
        print(json.dumps({"models": rows, "transcriber_reached": loaded is not None}))
        return 0
    table = Table(title="Speech models")
    for column in ("name", "source", "offered", "loaded", "multilingual", "path"):
        table.add_column(column)
    for r in rows:
        flags = [_yes(r["offered"]) + (" (default)" if r["default"] else ""), _yes(r["loaded"])]
        table.add_row(r["name"], r["source"], *flags, _yes(r["multilingual"]), r["path"] or "")
    Console().print(table)
    if loaded is None:
        console.print("[yellow]no transcriber answered: 'loaded' is unknown[/yellow]")
    return 0


def local_models(settings: Settings) -> list[LocalModel]:
    """The bundled tiny.en, the folders in VTX_MODEL_DIR, then the Hugging Face caches."""
    from huggingface_hub.constants import HF_HUB_CACHE

    found = [LocalModel(BUNDLED, "bundled", bundled_path()), *stored_models(settings.model_dir)]
    if settings.model_dir is not None:
        found += cached_models(settings.model_dir)
    found += cached_models(Path(HF_HUB_CACHE))
    first: dict[str, LocalModel] = {}
    for model in found:
        first.setdefault(model.name, model)
    return list(first.values())


def loaded_model(url: str) -> str | None:
    """The model the transcriber at `url` has loaded ("" when it has none yet), from its
    /health; None when it does not answer."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S)
        info: dict[str, Any] = response.json().get("info", {})
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return str(info.get("model", "")) if info.get("loaded") else ""


def _row(settings: Settings, model: LocalModel, loaded: str | None) -> dict[str, Any]:
    local = model.source != "download"
    return {
        "name": model.name,
        "source": model.source,
        "path": str(model.path) if local else None,
        "offered": model.name in allowed(settings),
        "default": model.name == settings.model,
        "loaded": loaded is not None and model.name == loaded,
        "multilingual": is_multilingual(str(model.path) if local else model.name),
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def pull(settings: Settings, name: str, as_json: bool) -> int:
    """Download NAME (a faster-whisper size or a Hugging Face repository) into VTX_MODEL_DIR;
    `base` comes from the `multilingual` extra instead, when it is installed."""
    try:
        target = _target(settings, name)
        with _staging(target) as staging:
            if name == base_model.NAME and base_model.installed():
                base_model.join_into(staging)
            else:
                _download(name, staging)
            _place(staging, target)
    except Refusal as exc:
        return _refused(str(exc), as_json)
    return _placed(name, target, as_json)


def import_folder(settings: Settings, folder: Path, name: str | None, as_json: bool) -> int:
    """Copy a CTranslate2 Whisper folder into VTX_MODEL_DIR, once it holds what loads."""
    name = name or folder.name
    try:
        missing = missing_files(folder)
        if missing:
            raise Refusal(
                f"{folder} is not a CTranslate2 Whisper model: it lacks {', '.join(missing)}."
            )
        target = _target(settings, name)
        with _staging(target) as staging:
            shutil.copytree(folder, staging, dirs_exist_ok=True)
            _place(staging, target)
    except Refusal as exc:
        return _refused(str(exc), as_json)
    return _placed(name, target, as_json)


def _target(settings: Settings, name: str) -> Path:
    if settings.model_dir is None:
        raise Refusal("VTX_MODEL_DIR is not set: it is where models are kept.")
    if not valid_name(name):
        raise Refusal(f"'{name}' is not a model name (letters, digits, . _ -, one / at most).")
    target = settings.model_dir / name
    if target.exists():
        raise Refusal(f"{target} exists already; remove it first to replace it.")
    return target


class _staging:
    """A hidden folder beside the target, removed unless it was renamed into place."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.target.name}-"
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.target.parent))
        return self.path

    def __exit__(self, *_: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _download(name: str, into: Path) -> None:
    from faster_whisper.utils import download_model

    try:
        with warnings.catch_warnings():  # huggingface_hub's deprecations, not the operator's
            warnings.simplefilter("ignore")
            download_model(name, output_dir=str(into))
    except ValueError as exc:
        raise Refusal(str(exc)) from exc
    except Exception as exc:  # huggingface_hub's many ways to say "no network"
        raise Refusal(
            f"Could not download '{name}' (no network, or no such model on the Hub; "
            f"HF_ENDPOINT chooses the server): {type(exc).__name__}: {exc}"
        ) from exc


def _place(staging: Path, target: Path) -> None:
    missing = missing_files(staging)
    if missing:
        raise Refusal(f"The model came without {', '.join(missing)}: not kept.")
    staging.rename(target)


def _refused(message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": message}))
    else:
        console.print(f"[red]{message}[/red]")
    return 1


def _placed(name: str, target: Path, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"name": name, "path": str(target)}))
    else:
        console.print(f"model [bold]{name}[/bold] is in {target}")
        console.print(f"use it with VTX_MODEL={name}, or offer it with VTX_MODELS={name}")
    return 0
