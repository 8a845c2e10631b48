"""`vtx transcribe`: upload to a running gateway, draw progress, write the transcript."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any, cast

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from shared.transcript import Format

console = Console(stderr=True)
POLL_S = 0.5


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


def transcribe_file(
    server: str,
    path: Path,
    fmt: Format,
    output: Path | None,
    language: str | None,
    chunk_seconds: float | None,
    timeout: float,
    api_key: str | None = None,
) -> int:
    data: dict[str, Any] = {}
    if language:
        data["language"] = language
    if chunk_seconds:
        data["chunk_seconds"] = str(chunk_seconds)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeouts = httpx.Timeout(60.0, connect=5.0)
    with httpx.Client(base_url=server, timeout=timeouts, headers=headers) as client:
        try:
            job = _upload(client, path, data)
            if job is None:
                return 1
            if not _follow(client, job, path.name, timeout):
                return 1
            response = client.get(f"/v1/jobs/{job['id']}/transcript", params={"format": fmt})
        except httpx.HTTPError as exc:
            console.print(f"[red]cannot reach the gateway at {server}:[/red] {exc}")
            return 2
    if response.status_code != 200:
        console.print(f"[red]{_detail(response)}[/red]")
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


def _upload(client: httpx.Client, path: Path, data: dict[str, Any]) -> dict[str, Any] | None:
    with _bar() as progress, path.open("rb") as handle:
        task = progress.add_task(f"uploading {path.name}", total=path.stat().st_size)
        reading = _Reading(handle, progress, task)
        response = client.post(
            "/v1/jobs",
            files={"file": (path.name, cast(IO[bytes], reading))},
            data=data,
            timeout=None,
        )
    if response.status_code != 202:
        console.print(f"[red]refused ({response.status_code}):[/red] {_detail(response)}")
        return None
    job: dict[str, Any] = response.json()
    return job


def _follow(client: httpx.Client, job: dict[str, Any], name: str, timeout: float) -> bool:
    """Poll the job until it ends; the bar shows percent of audio transcribed."""
    deadline = time.monotonic() + timeout
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
            response.raise_for_status()
            job = response.json()
            progress.update(task, completed=job["progress"]["percent"], state=job["status"])
            if job["status"] in ("completed", "failed"):
                break
            if time.monotonic() > deadline:
                console.print(f"[red]gave up after {timeout:g} s; job {job['id']} goes on[/red]")
                return False
            time.sleep(POLL_S)
    if job["status"] == "failed":
        console.print(f"[red]the job failed:[/red] {job['error']}")
        return False
    return True


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text
