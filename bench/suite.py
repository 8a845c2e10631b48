"""The suite started as a user starts it (`vtx up`), driven over HTTP, its memory sampled."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.media import OUT, ROOT
from services.cli.readiness import NotReady, wait_ready

SERVICES = ("gateway", "splitter", "transcriber", "health")  # every run waits for these
# Given a port in every run, waited for only by the scenario that needs it: a suite
# installed without the `speakers` extra still runs every other scenario.
OPTIONAL = ("speakers",)
WORKERS = ("splitter", "transcriber", "speakers")  # whose /metrics time the stages
READY_TIMEOUT_S = 180.0
MAX_BATCH = 200  # the most the job list returns in one page
# Per-client limits, not speed settings: 50 uploads at once and their polling pass them.
LIMITS_LIFTED = {"VTX_MAX_ACTIVE_JOBS": "0", "VTX_RATE_LIMIT_PER_MINUTE": "0"}
_METRIC = re.compile(
    r'^vtx_stage_duration_seconds_(sum|count)\{stage="(\w+)"\}\s+([0-9.eE+-]+)$', re.M
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MemorySampler:
    """RSS of every child of `vtx up`, sampled in a thread; peaks overall and per window."""

    def __init__(self, root_pid: int, interval_s: float = 0.1) -> None:
        self.root = psutil.Process(root_pid)
        self.interval_s = interval_s
        self.procs: dict[str, psutil.Process] = {}
        self.current: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._windows: list[dict[str, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def discover(self) -> None:
        for child in self.root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                self.procs[service_name(child.cmdline())] = child

    def start(self) -> None:
        self.discover()
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def sample(self) -> None:
        now: dict[str, int] = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                now[name] = int(proc.memory_info().rss)
        with self._lock:
            self.current = now
            for name, rss in now.items():
                self.peak[name] = max(self.peak.get(name, 0), rss)
                for window in self._windows:
                    window[name] = max(window.get(name, 0), rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    @contextlib.contextmanager
    def window(self) -> Iterator[Window]:
        """RSS at the start and the high-water mark while the block runs, per service."""
        self.sample()
        with self._lock:
            before = dict(self.current)
            peaks = dict(before)
            self._windows.append(peaks)
        result = Window(before, peaks)
        try:
            yield result
        finally:
            self.sample()
            with self._lock:
                self._windows.remove(peaks)


@dataclass
class Window:
    before: dict[str, int]
    peak: dict[str, int]

    def rise(self, name: str) -> int:
        return self.peak.get(name, 0) - self.before.get(name, 0)


def service_name(cmdline: list[str]) -> str:
    if "services.cli" in cmdline:
        return cmdline[cmdline.index("services.cli") + 1]
    exe = Path(cmdline[0]).name if cmdline else "?"
    return "redis" if "redis" in exe else exe


@dataclass
class JobRun:
    """One file through the suite; times in seconds from the first byte of the upload."""

    job_id: str
    status: str
    accepted_s: float
    total_s: float
    created_s: float
    started_s: float | None
    finished_s: float | None
    split_seen_s: float | None
    chunks: int | None
    stages: dict[str, float]  # /metrics deltas: split, transcribe (busy, summed), merge, speakers
    text: str
    error: str | None = None
    speaker_route: str | None = None  # channels or voices, as the splitter chose; None: off
    words: list[dict[str, Any]] = field(default_factory=list)  # kept only when asked for


@dataclass
class BatchRun:
    """Many files through the suite at once; seconds from the first upload's first byte."""

    files: int
    accepted_s: float  # every upload answered
    total_s: float  # every job completed or failed
    texts: list[str]
    failed: list[str]


@dataclass
class Suite:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    urls: dict[str, str]
    log: Path
    sampler: MemorySampler
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=600))

    @property
    def gateway(self) -> str:
        return self.urls["gateway"]

    def stage_totals(self) -> dict[str, tuple[float, float]]:
        """(sum, count) of vtx_stage_duration_seconds per stage, over the worker services
        that are running (the speakers service is not, without its extra)."""
        totals: dict[str, tuple[float, float]] = {}
        for name in WORKERS:
            try:
                text = self.client.get(f"{self.urls[name]}/metrics").text
            except httpx.HTTPError:
                if name in OPTIONAL:
                    continue
                raise
            for kind, stage, value in _METRIC.findall(text):
                s, c = totals.get(stage, (0.0, 0.0))
                totals[stage] = (s + float(value), c) if kind == "sum" else (s, c + float(value))
        return totals

    def upload(
        self, body: Iterable[bytes], size: int, filename: str, fields: dict[str, str] | None = None
    ) -> httpx.Response:
        boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in (fields or {}).items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def stream() -> Iterator[bytes]:
            yield head
            yield from body
            yield tail

        return self.client.post(
            f"{self.gateway}/v1/jobs",
            content=stream(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + size + len(tail)),
            },
        )

    def transcribe(
        self, media: Path, fields: dict[str, str] | None = None, words: bool = False
    ) -> JobRun:
        """Upload, poll the job, fetch the JSON transcript: the user's whole wait. With
        `words`, the transcript's words (times, text, speaker) are kept on the run."""
        before = self.stage_totals()
        wall0, t0 = time.time(), time.perf_counter()
        response = self.upload(file_pieces(media), media.stat().st_size, media.name, fields)
        accepted = time.perf_counter() - t0
        response.raise_for_status()
        job_id = str(response.json()["id"])
        job, split_seen = self.wait(job_id, t0)
        error = job.get("error")
        doc = self.document(job_id) if job["status"] == "completed" else {"segments": []}
        text = doc_text(doc)
        total = time.perf_counter() - t0
        after = self.stage_totals()
        stages = {k: v[0] - before.get(k, (0.0, 0.0))[0] for k, v in after.items()}
        progress = job.get("progress") or {}
        return JobRun(
            job_id=job_id,
            status=str(job["status"]),
            accepted_s=accepted,
            total_s=total,
            created_s=_since(job["created_at"], wall0) or 0.0,
            started_s=_since(job.get("started_at"), wall0),
            finished_s=_since(job.get("finished_at"), wall0),
            split_seen_s=split_seen,
            chunks=progress.get("chunks_total"),
            stages={k: round(v, 4) for k, v in stages.items() if v > 0},
            text=text,
            error=str(error) if error else None,
            speaker_route=job.get("speaker_route"),
            words=doc_words(doc) if words else [],
        )

    def document(self, job_id: str) -> dict[str, Any]:
        """The job's JSON transcript."""
        got = self.client.get(f"{self.gateway}/v1/jobs/{job_id}/transcript?format=json")
        got.raise_for_status()
        doc: dict[str, Any] = got.json()
        return doc

    def text(self, job_id: str) -> str:
        """The job's transcript as plain words, from its JSON segments."""
        return doc_text(self.document(job_id))

    def transcribe_many(self, files: Sequence[Path]) -> BatchRun:
        """Every file uploaded at once (one thread each), timed until all have ended."""
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(files)) as pool:
            ids = list(pool.map(self._submit, files))
        accepted = time.perf_counter() - t0
        statuses = self.wait_all(ids)
        total = time.perf_counter() - t0
        texts = [self.text(i) if statuses[i] == "completed" else "" for i in ids]
        failed = [i for i in ids if statuses[i] != "completed"]
        return BatchRun(len(files), accepted, total, texts, failed)

    def _submit(self, media: Path) -> str:
        response = self.upload(file_pieces(media), media.stat().st_size, media.name)
        response.raise_for_status()
        return str(response.json()["id"])

    def wait_all(self, job_ids: Sequence[str], poll_s: float = 0.25) -> dict[str, str]:
        """Poll the job list (one request for all, newest first) until every job ended."""
        pending, ended = set(job_ids), {}
        while pending:
            page = self.client.get(f"{self.gateway}/v1/jobs?limit={MAX_BATCH}").json()
            for item in page["items"]:
                if item["id"] in pending and item["status"] in ("completed", "failed"):
                    ended[item["id"]] = str(item["status"])
                    pending.discard(item["id"])
            if pending:
                time.sleep(poll_s)
        return ended

    def wait(
        self, job_id: str, t0: float, until: tuple[str, ...] = ("completed", "failed")
    ) -> tuple[dict[str, Any], float | None]:
        """Poll the job (every 50 ms for 3 s, then 200 ms) until a status in `until`."""
        split_seen: float | None = None
        while True:
            job: dict[str, Any] = self.client.get(f"{self.gateway}/v1/jobs/{job_id}").json()
            elapsed = time.perf_counter() - t0
            if split_seen is None and job["status"] in ("transcribing", "completed"):
                split_seen = elapsed
            if job["status"] in until:
                return job, split_seen
            time.sleep(0.05 if elapsed < 3 else 0.2)

    def delete(self, job_id: str) -> None:
        self.client.delete(f"{self.gateway}/v1/jobs/{job_id}")

    def idle(self, timeout_s: float = 120) -> None:
        """Wait until no job is active (the previous one's stragglers are done)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            page = self.client.get(f"{self.gateway}/v1/jobs?limit=50").json()
            if all(j["status"] in ("completed", "failed") for j in page["items"]):
                return
            time.sleep(0.5)


def doc_text(doc: dict[str, Any]) -> str:
    return " ".join(s["text"].strip() for s in doc["segments"])


def doc_words(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every word of a JSON transcript in time order, each with its speaker (None where
    the transcript has none: the word's, else its segment's)."""
    out = [
        {
            "start": float(w["start"]),
            "end": float(w["end"]),
            "word": str(w["word"]),
            "speaker": w.get("speaker") or s.get("speaker"),
        }
        for s in doc["segments"]
        for w in s.get("words") or []
    ]
    return sorted(out, key=lambda w: (w["start"], w["end"]))


def file_pieces(path: Path, piece: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(piece):
            yield block


def _since(stamp: str | None, wall0: float) -> float | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp).timestamp() - wall0


def suite_env(data_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTX_")}
    env.update(
        VTX_DATA_DIR=str(data_dir),
        VTX_EMBEDDED_REDIS_PORT=str(free_port()),
        VTX_MAX_UPLOAD_MB="1536",
        VTX_LOG_FORMAT="json",
        **LIMITS_LIFTED,
        **{f"VTX_{name.upper()}_PORT": str(free_port()) for name in (*SERVICES, *OPTIONAL)},
    )
    env.update(overrides)
    return env


@contextlib.contextmanager
def running(data_dir: Path, overrides: dict[str, str]) -> Iterator[Suite]:
    """`vtx up` in a subprocess with its own data dir and ports; stopped with SIGTERM."""
    env = suite_env(data_dir, overrides)
    urls = {n: f"http://127.0.0.1:{env[f'VTX_{n.upper()}_PORT']}" for n in (*SERVICES, *OPTIONAL)}
    logs = OUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"vtx-up-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        suite = Suite(process, env, urls, log, MemorySampler(process.pid))
        try:
            _wait_ready(suite)
            suite.sampler.start()
            yield suite
        finally:
            suite.sampler.stop()
            suite.client.close()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_ready(suite: Suite) -> None:
    try:
        urls = [suite.urls[n] for n in SERVICES]
        wait_ready(urls, READY_TIMEOUT_S, lambda: suite.process.poll() is not None)
    except NotReady as exc:
        raise RuntimeError(f"vtx up {exc}:\n{suite.log.read_text()[-4000:]}") from exc
