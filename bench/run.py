"""One `make bench` run: the suite against single-process faster-whisper, on real speech.

Scenarios: a ~9-minute MP4 (`long`), many ~90 s files submitted at once (`batch`), one
short recording (`clip`), each repeated and interleaved with the baselines (see
schedule.py); conversations with known speakers through the suite with `speakers=auto`,
interleaved with the same files without speakers (`speakers`, see speakers.py); then,
once, the memory checks (`memory`). The suite runs with its own defaults (`vtx up`,
driven over HTTP only), so the bench measures what users get.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import baseline, conversations, media, report, speakers, suite
from bench.report import MB, mb, median
from bench.schedule import Step, parse_scenarios, rotated, steps
from bench.summary import Measured, batch_section, clip_section, lines, long_section, verdict_rows

Say = Callable[[str], None]
USES_LONG = {"long", "batch"}  # batch without long picks its baseline on the long file
SPEAKERS_READY_S = 180.0  # the speakers service loads its models after the others are up


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (medians)")
    p.add_argument("--scenarios", default="long,batch,clip,speakers,memory", help="comma-separated")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--model", default="tiny.en", help="faster-whisper model name or path")
    p.add_argument("--batch-files", type=int, default=50, help="files in the batch scenario")
    p.add_argument("--batch-seconds", type=float, default=90.0, help="length of each")
    p.add_argument("--long-minutes", type=float, default=9.0, help="length of the long file")
    p.add_argument("--clip-repeat", type=int, default=3, help="clip requests per side and rep")
    p.add_argument("--media-dir", type=Path, default=media.SHARED_MEDIA, help="the recordings")
    p.add_argument("--quick", action="store_true", help="1 rep, 10 batch files, small memory")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="VTX_KEY=VALUE",
        help="a setting for the suite (repeatable); the default is the suite's defaults",
    )
    p.add_argument("--wer-tolerance", type=float, default=0.01, help="acceptable WER margin")
    p.add_argument("--no-word-timestamps", action="store_true", help="baselines skip words")
    p.add_argument("--upload-mb", type=int, default=1024, help="size of the gateway upload test")
    p.add_argument("--long-hours", type=float, default=2.0, help="length of the splitter test")
    p.add_argument("--out", type=Path, default=media.OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.batch_files = 1, min(args.batch_files, 10)
        args.upload_mb, args.long_hours = min(args.upload_mb, 128), min(args.long_hours, 0.25)
    if not 1 <= args.batch_files <= suite.MAX_BATCH:
        p.error(f"--batch-files takes 1 to {suite.MAX_BATCH}")
    if args.reps < 1:
        p.error("--reps takes 1 or more")
    try:
        args.scenarios = parse_scenarios(args.scenarios)
    except ValueError as exc:
        p.error(str(exc))
    return args


def suite_overrides(args: argparse.Namespace) -> dict[str, str]:
    env = {"VTX_MODEL": args.model, "VTX_DEVICE": args.device}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not key.startswith("VTX_") or not sep:
            raise SystemExit(f"--env wants VTX_KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def command(argv: Sequence[str]) -> str:
    """The command that reproduces this run."""
    return f"make bench BENCH_ARGS={shlex.quote(shlex.join(argv))}" if argv else "make bench"


class Bench:
    """One run's media, baseline model, suite and measurements. The long file and the
    batch are rendered only for the scenarios that use them (the first time, minutes)."""

    def __init__(self, args: argparse.Namespace, say: Say) -> None:
        self.args, self.say = args, say
        library = media.Library(args.media_dir)
        self.clip = library.clip()
        self.library = library
        if USES_LONG & set(args.scenarios):
            say(f"long file {self.long.seconds:.1f} s")
        if "batch" in args.scenarios:
            say(f"batch {len(self.files)} files, {sum(f.seconds for f in self.files):.0f} s")
        self.loaded = baseline.load(
            args.model, args.device, word_timestamps=not args.no_word_timestamps
        )
        self.m = Measured()

    @functools.cached_property
    def long(self) -> media.TestMedia:
        return self.library.long_file(self.args.long_minutes * 60)

    @functools.cached_property
    def files(self) -> list[media.TestMedia]:
        return self.library.batch(self.args.batch_files, self.args.batch_seconds)

    def step(self, s: suite.Suite, step: Step) -> None:
        getattr(self, f"{step.scenario}_{step.side}")(s, step.rep)

    def long_suite(self, s: suite.Suite, rep: int) -> None:
        s.idle()
        with s.sampler.window() as w:
            job = s.transcribe(self.long.path)
        self.m.suite_long.append(job)
        self.m.windows.append({k: mb(w.rise(k)) for k in w.peak})
        self.say(f"rep {rep + 1} long, suite: {job.total_s:.2f} s ({job.status})")

    def long_baseline(self, s: suite.Suite, rep: int) -> None:
        for name in rotated([c.name for c in baseline.CANDIDATES], rep):
            r = baseline.run(self.loaded, baseline.named(name), self.long.path)
            self.m.base_long.setdefault(name, []).append(r)
            self.say(f"rep {rep + 1} long, {name}: {r.total_s:.2f} s")

    def batch_suite(self, s: suite.Suite, rep: int) -> None:
        s.idle()
        b = s.transcribe_many([f.path for f in self.files])
        self.m.suite_batch.append(b)
        self.say(f"rep {rep + 1} batch, suite: {b.total_s:.2f} s ({len(b.failed)} failed)")

    def batch_baseline(self, s: suite.Suite, rep: int) -> None:
        if self.m.loop_name is None:
            self.m.loop_name = self.m.best(self.long, self.args.wer_tolerance) or self._choose()
        seconds, texts = baseline.loop(
            self.loaded, baseline.named(self.m.loop_name), [f.path for f in self.files]
        )
        self.m.loop_s.append(seconds)
        self.m.loop_texts += texts
        self.say(f"rep {rep + 1} batch, loop of {self.m.loop_name}: {seconds:.2f} s")

    def _choose(self) -> str:
        """Without the long scenario, one baseline pass over the long file picks the best."""
        self.say("choosing the best baseline on the long file (long scenario not run) ...")
        self.long_baseline_once()
        return self.m.best(self.long, self.args.wer_tolerance) or baseline.CANDIDATES[0].name

    def long_baseline_once(self) -> None:
        for c in baseline.CANDIDATES:
            self.m.base_long.setdefault(c.name, []).append(
                baseline.run(self.loaded, c, self.long.path)
            )

    def clip_suite(self, s: suite.Suite, rep: int) -> None:
        runs = [s.transcribe(self.clip.path) for _ in range(self.args.clip_repeat)]
        self.m.suite_clip.append(median([r.total_s for r in runs if r.status == "completed"]))
        self.say(f"rep {rep + 1} clip, suite: {self.m.suite_clip[-1]:.3f} s")

    def clip_baseline(self, s: suite.Suite, rep: int) -> None:
        for c in baseline.CANDIDATES:
            runs = [
                baseline.run(self.loaded, c, self.clip.path) for _ in range(self.args.clip_repeat)
            ]
            self.m.base_clip.setdefault(c.name, []).append(median([r.total_s for r in runs]))

    def speakers_suite(self, s: suite.Suite, rep: int) -> None:
        """Each conversation with speakers=auto, scored; nothing once the suite refused."""
        if self.m.speakers_skipped is not None:
            return
        for runs in self.m.speakers:
            s.idle()
            try:
                job = s.transcribe(runs.case.path, {"speakers": "auto"}, words=True)
            except httpx.HTTPStatusError as exc:
                self.m.speakers_skipped = refusal(exc.response)
                self.say(f"rep {rep + 1} speakers: not measured: {self.m.speakers_skipped}")
                return
            runs.with_speakers.append(job)
            runs.scores.append(speakers.score(runs.case, job))
            self.say(
                f"rep {rep + 1} speakers, {runs.case.name}: {job.total_s:.2f} s ({job.status}, "
                f"{runs.scores[-1].found} found, route {job.speaker_route})"
            )

    def speakers_baseline(self, s: suite.Suite, rep: int) -> None:
        """The same conversations without speakers: what diarization costs on top."""
        if self.m.speakers_skipped is not None:
            return
        for runs in self.m.speakers:
            s.idle()
            runs.without.append(s.transcribe(runs.case.path))
            self.say(
                f"rep {rep + 1} speakers, {runs.case.name} without: "
                f"{runs.without[-1].total_s:.2f} s"
            )

    def prepare_speakers(self, s: suite.Suite, folder: Path) -> None:
        """The conversations, and the speakers service warm: one clip with speakers=auto,
        asked again while the gateway answers 503 (no speakers worker alive yet: it loads
        its models after the other services are up) for up to SPEAKERS_READY_S, if
        `vtx up` started a speakers service at all (not without its extra)."""
        try:
            cases = speakers.cases(self.args.media_dir, folder)
        except conversations.MediaMissing as exc:
            self.m.speakers_skipped = str(exc)
            self.say(f"speakers: not measured: {exc}")
            return
        self.m.speakers = [speakers.Runs(c) for c in cases]
        self.say(f"speakers: {len(cases)} conversations ({', '.join(c.name for c in cases)})")
        started = "speakers" in s.sampler.procs
        deadline = time.monotonic() + (SPEAKERS_READY_S if started else 0.0)
        while True:
            try:
                s.transcribe(self.clip.path, {"speakers": "auto"})
                return
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 503 or time.monotonic() > deadline:
                    self.m.speakers_skipped = refusal(exc.response)
                    self.say(f"speakers: not measured: {self.m.speakers_skipped}")
                    return
            time.sleep(2.0)

    def warm(self, s: suite.Suite) -> None:
        """A service that is up is warm: one clip through each side before timing."""
        s.transcribe(self.clip.path)
        for c in baseline.CANDIDATES:
            baseline.run(self.loaded, c, self.clip.path)


def refusal(response: httpx.Response) -> str:
    """What the gateway said when it refused a job (a 503 names the missing service)."""
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return f"{response.status_code} {str(detail)[:300]}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    say = _printer()
    began = time.perf_counter()
    try:
        bench = Bench(args, say)
    except media.MediaMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    say(f"clip {bench.clip.seconds:.1f} s; media in {media.CACHE}")
    load_before = os.getloadavg()
    memory: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vtx-bench-") as tmp:
        started = time.perf_counter()
        with suite.running(Path(tmp) / "data", suite_overrides(args)) as s:
            say(f"suite up in {time.perf_counter() - started:.1f} s (log: {s.log})")
            bench.warm(s)
            if "speakers" in args.scenarios:
                bench.prepare_speakers(s, Path(tmp) / "conversations")
            for step in steps(args.reps, args.scenarios):
                bench.step(s, step)
            if "memory" in args.scenarios:
                memory = _memory_checks(s, bench.library, args, say)
            peaks = {k: mb(v) for k, v in s.sampler.peak.items()}
    record = _record(bench, argv, memory, peaks, load_before)
    record["bench_seconds"] = round(time.perf_counter() - began, 1)
    for line in ["", *lines(record, args.wer_tolerance)]:
        say(line)
    say("")
    say(f"reproduce: {record['command']}")
    _write(record, args.out, say)
    return 0


def _record(
    bench: Bench,
    argv: Sequence[str],
    memory: dict[str, Any],
    peaks: dict[str, float | None],
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    args, m = bench.args, bench.m
    scenarios = args.scenarios
    long = long_section(m, bench.long, args.wer_tolerance) if "long" in scenarios else None
    best = long["best"] if long else m.loop_name
    long_xrt = [bench.long.seconds / j.total_s for j in m.suite_long] if m.suite_long else []
    record: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command(argv),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "suite_env": suite_overrides(args) | suite.LIMITS_LIFTED,
        "baseline_model": {
            "device": bench.loaded.device,
            "compute_type": bench.loaded.compute_type,
            "threads": bench.loaded.threads,
            "load_s": round(bench.loaded.load_s, 3),
            "word_timestamps": bench.loaded.word_timestamps,
        },
        "media": (
            {"path": str(bench.long.path), "seconds": bench.long.seconds}
            if USES_LONG & set(scenarios)
            else None
        ),
        "best": best,
        "long": long,
        "batch": batch_section(m, bench.files, long_xrt) if "batch" in scenarios else None,
        "clip": clip_section(m, best) if "clip" in scenarios else None,
        "speakers": (
            speakers.section(m.speakers, m.speakers_skipped) if "speakers" in scenarios else None
        ),
        "memory": memory,
        "rss_peak_mb": peaks,
        "bench_process_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }
    record["targets"] = verdict_rows(record, args.wer_tolerance)
    return record


def _memory_checks(
    s: suite.Suite, library: media.Library, args: argparse.Namespace, say: Say
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    s.idle()
    size = args.upload_mb * MB
    say(f"gateway: uploading {args.upload_mb} MB of zeros ...")
    with s.sampler.window() as w:
        t0 = time.perf_counter()
        response = s.upload(media.zeros(size), size, "zeros.bin")
        seconds = time.perf_counter() - t0
    out["gateway_upload"] = {
        "bytes": size,
        "status": response.status_code,
        "detail": response.text[:300],
        "seconds": round(seconds, 2),
        "gateway_rss_rise_mb": mb(w.rise("gateway")),
    }
    say(f"  -> {response.status_code} in {seconds:.1f} s, gateway rise {mb(w.rise('gateway'))} MB")
    path = library.long_audio(args.long_hours)
    length = media.duration(path)
    say(f"splitter: splitting {length / 3600:.2f} h of audio ({path.stat().st_size / MB:.0f} MB)")
    s.idle()
    with s.sampler.window() as w:
        t0 = time.perf_counter()
        response = s.upload(suite.file_pieces(path), path.stat().st_size, path.name)
        response.raise_for_status()
        job_id = str(response.json()["id"])
        job, split_seen = s.wait(job_id, t0, until=("transcribing", "completed", "failed"))
    s.delete(job_id)
    out["splitter_long"] = {
        "audio_seconds": round(length, 1),
        "status_after_split": job["status"],
        "chunks": (job.get("progress") or {}).get("chunks_total"),
        "seconds_to_split": None if split_seen is None else round(split_seen, 2),
        "rss_rise_mb": {k: mb(w.rise(k)) for k in w.peak},
    }
    say(f"  -> split in {split_seen} s, splitter rise {mb(w.rise('splitter'))} MB")
    return out


def _write(record: dict[str, Any], out: Path, say: Say) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    png = report.plot(record, out / f"bench-{stamp}.png") if record["long"] else None
    say(f"record: {path}")
    say(f"plot:   {png}" if png else "plot:   skipped (no long scenario, or no matplotlib)")


def _printer() -> Say:
    def say(line: str) -> None:
        print(line, flush=True)

    return say
