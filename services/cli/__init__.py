"""The `vtx` command line: the one place that knows every service, to start them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from shared.config import Settings
from shared.subtitles import CueRules
from shared.transcript import Format

app = typer.Typer(
    help="vtx: self-hosted transcription of video and audio.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(
    help="API keys: once one exists, every request needs one (VTX_AUTH=auto).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
models_app = typer.Typer(
    help="Speech models: those here and loaded, and getting more into VTX_MODEL_DIR.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


@app.command()
def up() -> None:
    """Start the whole suite on this machine (Redis too, unless VTX_REDIS_URL is set)."""
    from services.cli.up import run_suite

    raise typer.Exit(run_suite(Settings()))


@app.command()
def gateway() -> None:
    """Run the gateway (public API) alone, as a container does."""
    from services.cli.serve import serve

    serve("gateway", Settings())


@app.command()
def splitter() -> None:
    """Run the splitter and its worker alone."""
    from services.cli.serve import serve

    serve("splitter", Settings())


@app.command()
def transcriber() -> None:
    """Run the transcriber and its worker alone."""
    from services.cli.serve import serve

    serve("transcriber", Settings())


@app.command()
def speakers() -> None:
    """Run the speakers service (diarization) and its worker alone; needs vtx[speakers]."""
    from services.cli.serve import serve
    from services.cli.up import SPEAKERS_HINT, speakers_installed

    if not speakers_installed():
        typer.echo(f"Cannot start: {SPEAKERS_HINT}.", err=True)
        raise typer.Exit(1)
    serve("speakers", Settings())


@app.command()
def health() -> None:
    """Run the health aggregator alone."""
    from services.cli.serve import serve

    serve("health", Settings())


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from services.cli.database import run

    typer.echo(run("upgrade", revision))


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")]) -> None:
    """Undo migrations down to REVISION."""
    from services.cli.database import run

    typer.echo(run("downgrade", revision))


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision and the one this code needs."""
    from services.cli.database import run

    typer.echo(run("current"))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line.")] = False,
    audio_hours: Annotated[
        float | None,
        typer.Option(min=0, help="Audio hours in flight for this key (0: no limit)."),
    ] = None,
    storage_gb: Annotated[
        float | None,
        typer.Option(min=0, help="Stored media for this key, in GB (0: no limit)."),
    ] = None,
) -> None:
    """Create a key and its webhook secret and print both (the only time they are shown).

    Without --audio-hours / --storage-gb the key follows VTX_QUOTA_AUDIO_HOURS and
    VTX_QUOTA_STORAGE_GB."""
    from services.cli.keys import create

    raise typer.Exit(create(name, json_out, audio_hours, storage_gb))


@keys_app.command("list")
def keys_list(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List keys (ids, names, prefixes; never the keys themselves)."""
    from services.cli.keys import listing

    raise typer.Exit(listing(json_out))


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's id or prefix.")]) -> None:
    """Revoke a key: its next request gets 401."""
    from services.cli.keys import revoke

    raise typer.Exit(revoke(key))


@models_app.command("list")
def models_list(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    transcriber: Annotated[
        str | None, typer.Option(help="A transcriber's URL; default: this machine's.")
    ] = None,
) -> None:
    """List the models on this machine and configured (VTX_MODEL, VTX_MODELS), and which
    one the running transcriber has loaded."""
    from services.cli.models import listing

    raise typer.Exit(listing(Settings(), json_out, transcriber))


@models_app.command("pull")
def models_pull(
    name: Annotated[
        str, typer.Argument(help="e.g. base, large-v3, or Systran/faster-whisper-small")
    ],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Download a faster-whisper model by name into VTX_MODEL_DIR (needs the network)."""
    from services.cli.models import pull

    raise typer.Exit(pull(Settings(), name, json_out))


@models_app.command("import")
def models_import(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, readable=True)],
    name: Annotated[str | None, typer.Option(help="Default: the folder's name.")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Copy a CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json) into
    VTX_MODEL_DIR."""
    from services.cli.models import import_folder

    raise typer.Exit(import_folder(Settings(), folder, name, json_out))


def _speakers_option(value: str | None) -> str | None:
    """--speakers as the gateway reads it, checked before the upload (the server still
    decides the range: its VTX_MAX_SPEAKERS)."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("off", "auto") or (text.isascii() and text.isdigit() and len(text) <= 3):
        return text
    raise typer.BadParameter("takes auto, off, or a number of speakers such as 2")


@app.command()
def transcribe(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    server: Annotated[str | None, typer.Option(help="Gateway URL.")] = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.txt,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
    language: Annotated[str | None, typer.Option(help="e.g. en; detected if absent.")] = None,
    chunk_seconds: Annotated[float | None, typer.Option(min=5, max=3600)] = None,
    vad: Annotated[
        bool | None,
        typer.Option(
            "--vad/--no-vad",
            help="Find speech first and decode only it (--no-vad: all the audio, in order). "
            "Default: the server's VTX_VAD.",
        ),
    ] = None,
    hotwords: Annotated[
        str | None,
        typer.Option(help="Words to favour while decoding, e.g. names the model misspells."),
    ] = None,
    speakers: Annotated[
        str | None,
        typer.Option(
            help="Who speaks when: auto, or how many people speak (e.g. 2); off by default. "
            "Needs the speakers service (pip install 'vtx\\[speakers]').",
            callback=_speakers_option,
        ),
    ] = None,
    min_speakers: Annotated[
        int | None, typer.Option(min=1, help="With --speakers auto: at least this many.")
    ] = None,
    max_speakers: Annotated[
        int | None,
        typer.Option(min=1, help="With --speakers auto (implied): at most this many."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the transcript.")] = 3600,
    api_key: Annotated[
        str | None, typer.Option(envvar="VTX_API_KEY", help="When the server requires keys.")
    ] = None,
    max_line_width: Annotated[
        int | None, typer.Option(help="SRT/VTT: characters a line (server default 42).")
    ] = None,
    max_line_count: Annotated[
        int | None, typer.Option(help="SRT/VTT: lines a cue (server default 2).")
    ] = None,
    max_cue_seconds: Annotated[
        float | None, typer.Option(help="SRT/VTT: longest a cue lasts (server default 7).")
    ] = None,
) -> None:
    """Upload FILE to a running gateway, show progress, write the transcript."""
    from services.cli.client import JobRequest, transcribe_file

    settings = Settings()
    url = server or local_gateway(settings)
    options = JobRequest(
        language=language,
        chunk_seconds=chunk_seconds,
        vad=vad,
        hotwords=hotwords,
        speakers=speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
    )
    given = {
        "max_line_width": max_line_width,
        "max_line_count": max_line_count,
        "max_cue_seconds": max_cue_seconds,
    }
    rules = subtitle_rules({k: v for k, v in given.items() if v is not None})
    code = transcribe_file(url, file, format, output, options, timeout, api_key, rules)
    raise typer.Exit(code)


def subtitle_rules(given: dict[str, float]) -> CueRules:
    """The rules asked for, checked before the upload: a bad one fails at once."""
    try:
        return CueRules.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "--" + str(first["loc"][0]).replace("_", "-")
        raise typer.BadParameter(first["msg"], param_hint=name) from None


def local_gateway(settings: Settings) -> str:
    """The gateway on this machine: a wildcard bind address is reached over loopback,
    by a name the gateway's Host allow-list lets in by default."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind address, never connected to
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.gateway_port}"
