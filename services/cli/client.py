"""`vtx transcribe`: upload to a running gateway, draw progress, write the transcript.

A 429 (too many requests, unfinished jobs or audio in flight for the key) is not a
failure: the upload waits as long as Retry-After says and tries again, until the
command's --timeout runs out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from shared.subtitles import CueRules
from shared.transcript import Format

console = Console(stderr=True)
POLL_S = 0.5
RETRY_DEFAULT_S = 5.0
RETRY_MAX_S = 300.0


class _Reading:
    """A file whose reads advance the upload bar (httpx streams it in pieces)."""

    def __init__(self, handle: IO[bytes], progress: Progress, task: TaskID) -> None:
        self._handle = handle
        self._progress = progress
        self._task = task

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._progress.advance(self._task, len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()


@dataclass(frozen=True)
class JobRequest:
    """The job options the command passes on; None leaves each to the server."""

    language: str | None = None
    chunk_seconds: float | None = None
    vad: bool | None = None
    hotwords: str | None = None
    speakers: str | None = None  # off, auto or a count, as the gateway reads it
    min_speakers: int | None = None
    max_speakers: int | None = None

    def form(self) -> dict[str, str]:
        """The form fields to send: only those given, so the server's defaults hold."""
        data: dict[str, str] = {}
        if self.language:
            data["language"] = self.language
        if self.chunk_seconds:
            data["chunk_seconds"] = str(self.chunk_seconds)
        if self.vad is not None:
            data["vad"] = "true" if self.vad else "false"
        if self.hotwords:
            data["hotwords"] = self.hotwords
        speakers = self.speakers
        if speakers is None and (self.min_speakers or self.max_speakers):
            speakers = "auto"  # bounds alone mean: find how many, within them
        if speakers:
            data["speakers"] = speakers
        for name in ("min_speakers", "max_speakers"):
            if (value := getattr(self, name)) is not None:
                data[name] = str(value)
        return data


def transcribe_file(
    server: str,
    path: Path,
    fmt: Format,
    output: Path | None,
    options: JobRequest,
    timeout: float,
    api_key: str | None = None,
    rules: CueRules | None = None,
) -> int:
    """Upload, follow, fetch; SRT and VTT cues cut by `rules` (the server's defaults
    for any rule not given)."""
    query = {"format": fmt.value, **(rules.model_dump(exclude_unset=True) if rules else {})}
    data: dict[str, Any] = dict(options.form())
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeouts = httpx.Timeout(60.0, connect=5.0)
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server, timeout=timeouts, headers=headers) as client:
        try:
            job = _upload(client, path, data, deadline)
            if job is None:
                return 1
            if not _follow(client, job, path.name, deadline):
                return 1
            response = client.get(f"/v1/jobs/{job['id']}/transcript", params=query)
        except httpx.HTTPError as exc:
            console.print(f"[red]cannot reach the gateway at {server}:[/red] {exc}")
            return 2
    if response.status_code != 200:
        console.print(f"[red]{escape(_detail(response))}[/red]")
        return 1
    if output is None:
        print(response.text, end="")
    else:
        output.write_text(response.text, encoding="utf-8")
        console.print(f"wrote {output}")
    return 0


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _upload(
    client: httpx.Client, path: Path, data: dict[str, Any], deadline: float
) -> dict[str, Any] | None:
    """POST the file; on 429 wait as told and send it again, until `deadline`."""
    with _bar() as progress:
        task = progress.add_task(f"uploading {path.name}", total=path.stat().st_size)
        while True:
            progress.update(task, completed=0, description=f"uploading {path.name}")
            with path.open("rb") as handle:
                reading = _Reading(handle, progress, task)
                response = client.post(
                    "/v1/jobs",
                    files={"file": (path.name, cast(IO[bytes], reading))},
                    data=data,
                    timeout=None,
                )
            if response.status_code != 429:
                break
            pause = min(retry_after(response), deadline - time.monotonic())
            if pause <= 0:
                console.print(f"[red]gave up waiting:[/red] {escape(_detail(response))}")
                return None
            waiting = escape(f"waiting: {_detail(response)}")
            progress.update(task, description=waiting)
            progress.console.print(f"{waiting} (trying again in {pause:.0f} s)")
            time.sleep(pause)
    if response.status_code != 202:
        # escape: a message may hold brackets rich would read as markup (vtx[speakers])
        console.print(f"[red]refused ({response.status_code}):[/red] {escape(_detail(response))}")
        return None
    job: dict[str, Any] = response.json()
    return job


def retry_after(response: httpx.Response) -> float:
    """Seconds the server asked to wait (Retry-After in seconds), within sane bounds."""
    value = response.headers.get("retry-after", "").strip()
    if value.isascii() and value.isdigit() and len(value) <= 6:
        return min(max(float(value), 1.0), RETRY_MAX_S)
    return RETRY_DEFAULT_S


def _follow(client: httpx.Client, job: dict[str, Any], name: str, deadline: float) -> bool:
    """Poll the job until it ends (pausing on 429); the bar shows percent of audio done."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[state]}"),
        console=console,
    )
    with progress:
        task = progress.add_task(f"transcribing {name}", total=100.0, state=job["status"])
        while True:
            response = client.get(f"/v1/jobs/{job['id']}")
            pause = POLL_S
            if response.status_code == 429:
                pause = retry_after(response)
            else:
                response.raise_for_status()
                job = response.json()
                progress.update(task, completed=job["progress"]["percent"], state=job["status"])
                if job["status"] in ("completed", "failed"):
                    break
            if time.monotonic() + pause > deadline:
                console.print(f"[red]gave up waiting; job {job['id']} goes on[/red]")
                return False
            time.sleep(pause)
    if job["status"] == "failed":
        console.print(f"[red]the job failed:[/red] {escape(str(job['error']))}")
        return False
    return True


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text
