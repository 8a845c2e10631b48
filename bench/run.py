"""One `make bench` run: baselines and the suite side by side, interleaved, then memory."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import baseline, media, report, suite
from bench.report import MB, Target, mb, median, paired_ratios, pick_best, table
from bench.wer import word_error_rate


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--model", default="tiny.en", help="faster-whisper model name or path")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the long video")
    p.add_argument("--repeat", type=int, default=1, help="interleaved repetitions (long file)")
    p.add_argument("--clip-repeat", type=int, default=3, help="short-clip requests per rep")
    p.add_argument("--quick", action="store_true", help="2 min file, small memory checks")
    p.add_argument("--media", type=Path, help="your own long file instead of generated speech")
    p.add_argument("--reference", type=Path, help="its reference text (with --media)")
    p.add_argument(
        "--source", default="auto", choices=["auto", "fixture", "shared"], help="speech used"
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="VTX_KEY=VALUE",
        help="setting for the suite (repeatable), e.g. VTX_BEAM_SIZE=1",
    )
    p.add_argument("--wer-tolerance", type=float, default=0.01, help="acceptable WER margin")
    p.add_argument("--no-word-timestamps", action="store_true", help="baselines skip words")
    p.add_argument("--upload-mb", type=int, default=1024, help="size of the gateway upload test")
    p.add_argument("--long-hours", type=float, default=2.0, help="length of the splitter test")
    p.add_argument("--no-memory", action="store_true", help="skip the upload and 2 h checks")
    p.add_argument("--out", type=Path, default=media.OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.minutes = min(args.minutes, 2.0)
        args.upload_mb = min(args.upload_mb, 128)
        args.long_hours = min(args.long_hours, 0.25)
    if (args.media is None) != (args.reference is None):
        p.error("--media and --reference go together")
    return args


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = {"VTX_MODEL": args.model, "VTX_DEVICE": args.device}
    for item in args.env:
        key, _, value = item.partition("=")
        if not key.startswith("VTX_") or not _:
            raise SystemExit(f"--env wants VTX_KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    say = _printer()
    if args.media:
        long = media.TestMedia(
            args.media, args.reference.read_text().strip(), media.duration(args.media)
        )
    else:
        say(f"preparing {args.minutes:g} min of speech ({args.source}) ...")
        long = media.long_video(args.minutes * 60, args.source)
    clip = media.clip(args.source)
    say(f"long file: {long.path.name}, {long.seconds:.1f} s; clip {clip.seconds:.1f} s")
    loaded = baseline.load(args.model, args.device, word_timestamps=not args.no_word_timestamps)
    say(f"baseline model loaded in {loaded.load_s:.2f} s ({loaded.device}, {loaded.compute_type})")
    record: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "media": {
            "path": str(long.path),
            "seconds": long.seconds,
            "words": len(long.reference.split()),
        },
        "clip": {"path": str(clip.path), "seconds": clip.seconds},
    }
    suite_env = _env(args)
    long_runs: list[suite.JobRun] = []
    clip_runs: list[suite.JobRun] = []
    windows: list[dict[str, Any]] = []
    base_clip: dict[str, list[float]] = {}
    base_long: dict[str, list[baseline.Run]] = {}
    with tempfile.TemporaryDirectory(prefix="vtx-bench-") as tmp:
        started = time.perf_counter()
        with suite.running(Path(tmp) / "data", suite_env) as s:
            say(f"suite up in {time.perf_counter() - started:.1f} s (log: {s.log})")
            s.transcribe(clip.path)  # warm both sides: a service that is up is warm
            for c in baseline.CANDIDATES:
                baseline.run(loaded, c, clip.path)
            for rep in range(args.repeat):
                order = ["baseline", "suite"] if rep % 2 == 0 else ["suite", "baseline"]
                for side in order:
                    if side == "baseline":
                        for c in _rotated(baseline.CANDIDATES, rep):
                            r = baseline.run(loaded, c, long.path)
                            base_long.setdefault(c.name, []).append(r)
                            say(f"rep {rep + 1} baseline {c.name}: {r.total_s:.2f} s")
                    else:
                        s.idle()
                        with s.sampler.window() as w:
                            job = s.transcribe(long.path)
                        long_runs.append(job)
                        windows.append({k: mb(w.rise(k)) for k in w.peak})
                        say(f"rep {rep + 1} suite: {job.total_s:.2f} s ({job.status})")
                for k in range(args.clip_repeat):
                    first_suite = (rep + k) % 2 == 0
                    if first_suite:
                        clip_runs.append(s.transcribe(clip.path))
                    for c in baseline.CANDIDATES:
                        r = baseline.run(loaded, c, clip.path)
                        base_clip.setdefault(c.name, []).append(r.total_s)
                    if not first_suite:
                        clip_runs.append(s.transcribe(clip.path))
            memory = {} if args.no_memory else _memory_checks(s, args, say)
            peaks = {k: mb(v) for k, v in s.sampler.peak.items()}
    record["bench_process_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    _summarise(
        record,
        args,
        long,
        loaded,
        base_long,
        long_runs,
        clip_runs,
        base_clip,
        windows,
        peaks,
        memory,
    )
    record["bench_seconds"] = round(time.perf_counter() - began, 1)
    _write(record, args.out, say)
    return 0


def _rotated(items: Sequence[baseline.Candidate], n: int) -> list[baseline.Candidate]:
    k = n % len(items)
    return [*items[k:], *items[:k]]


def _memory_checks(s: suite.Suite, args: argparse.Namespace, say: Any) -> dict[str, Any]:
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
        "mb_per_s": round(size / MB / max(seconds, 1e-9), 1),
        "gateway_rss_before_mb": mb(w.before.get("gateway")),
        "gateway_rss_peak_mb": mb(w.peak.get("gateway")),
        "gateway_rss_rise_mb": mb(w.rise("gateway")),
    }
    say(f"  -> {response.status_code} in {seconds:.1f} s, gateway rise {mb(w.rise('gateway'))} MB")
    path = media.long_audio(args.long_hours, args.source)
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
        "pcm_of_whole_file_mb": round(length * 16_000 * 2 / MB, 1),
        "rss_before_mb": {k: mb(v) for k, v in w.before.items()},
        "rss_peak_mb": {k: mb(v) for k, v in w.peak.items()},
        "rss_rise_mb": {k: mb(w.rise(k)) for k in w.peak},
    }
    say(f"  -> split in {split_seen} s, splitter rise {mb(w.rise('splitter'))} MB")
    return out


def _summarise(
    record: dict[str, Any],
    args: argparse.Namespace,
    long: media.TestMedia,
    loaded: baseline.Loaded,
    base_long: dict[str, list[baseline.Run]],
    long_runs: list[suite.JobRun],
    clip_runs: list[suite.JobRun],
    base_clip: dict[str, list[float]],
    windows: list[dict[str, Any]],
    peaks: dict[str, float | None],
    memory: dict[str, Any],
) -> None:
    say = _printer()
    candidates: dict[str, Any] = {}
    for c in baseline.CANDIDATES:
        runs = base_long.get(c.name, [])
        total = median([r.total_s for r in runs])
        candidates[c.name] = {
            "beam_size": c.beam_size,
            "batch_size": c.batch_size,
            "threads": loaded.threads,
            "runs_s": [round(r.total_s, 3) for r in runs],
            "decode_s": median([r.decode_s for r in runs]),
            "transcribe_s": median([r.transcribe_s for r in runs]),
            "total_s": total,
            "x_realtime": long.seconds / total,
            "wer": word_error_rate(long.reference, runs[-1].text) if runs else None,
            "clip_s": median(base_clip.get(c.name, [])),
            "text": runs[-1].text if runs else "",
        }
    wers = {n: float(v["wer"]) for n, v in candidates.items()}
    best = pick_best(wers, {n: v["total_s"] for n, v in candidates.items()}, args.wer_tolerance)
    fastest = min(candidates, key=lambda n: candidates[n]["total_s"])
    record["baseline"] = {
        "device": loaded.device,
        "compute_type": loaded.compute_type,
        "threads": loaded.threads,
        "load_s": round(loaded.load_s, 3),
        "word_timestamps": loaded.word_timestamps,
        "candidates": candidates,
        "best": best,
        "best_rule": (
            f"fastest candidate whose WER is within {args.wer_tolerance} of the most "
            f"accurate candidate's ({min(wers.values()):.3f})"
        ),
        "fastest": fastest,
    }
    done = [r for r in long_runs if r.status == "completed"]
    suite_total = median([r.total_s for r in done])
    suite_wer = word_error_rate(long.reference, done[-1].text) if done else None
    per_rep = {
        name: paired_ratios(
            [r.total_s for r in base_long.get(name, [])], [r.total_s for r in long_runs]
        )
        for name in candidates
    }
    clip_suite = [r.total_s for r in clip_runs if r.status == "completed"]
    overheads = [a - b for a, b in zip(clip_suite, base_clip.get(best, []), strict=False)]
    record["suite"] = {
        "env": _env(args),
        "long": {
            "runs": [dataclasses.asdict(r) | {"text": r.text[:200]} for r in long_runs],
            "total_s": suite_total,
            "x_realtime": long.seconds / suite_total if done else None,
            "wer": suite_wer,
            "rss_rise_mb": windows,
        },
        "clip": {"runs_s": [round(x, 3) for x in clip_suite], "total_s": median(clip_suite)},
        "rss_peak_mb": peaks,
    }
    throughput = median(per_rep[best]) if per_rep[best] else None
    overhead_ms = median(overheads) * 1000 if overheads else None
    record["ratios"] = {
        "throughput_vs_best": throughput,
        "throughput_per_rep_vs_best": per_rep[best],
        "throughput_vs": {n: median(v) if v else None for n, v in per_rep.items()},
        "clip_overhead_ms": overhead_ms,
        "clip_overhead_per_rep_ms": [round(x * 1000, 1) for x in overheads],
    }
    record["memory"] = memory
    gateway = memory.get("gateway_upload", {})
    splitter = memory.get("splitter_long", {})
    best_wer = wers[best]
    targets = [
        Target("throughput suite / best baseline", throughput, 1.2, True, "x"),
        Target("short-clip overhead", overhead_ms, 300, False, " ms"),
        Target(
            f"WER suite - baseline ({best_wer:.3f})",
            None if suite_wer is None else suite_wer - best_wer,
            0.01,
            False,
        ),
        Target(
            f"gateway RSS rise, {args.upload_mb} MB upload",
            gateway.get("gateway_rss_rise_mb"),
            50,
            False,
            " MB",
        ),
        Target(
            f"splitter RSS rise, {args.long_hours:g} h file",
            (splitter.get("rss_rise_mb") or {}).get("splitter"),
            100,
            False,
            " MB",
        ),
    ]
    record["targets"] = [dataclasses.asdict(t) | {"met": t.met} for t in targets]

    say("")
    say(
        f"baseline candidates ({long.seconds:.0f} s file, {loaded.threads} threads, "
        f"{loaded.compute_type}, word timestamps {loaded.word_timestamps}):"
    )
    rows: list[list[object]] = [
        [n, v["total_s"], v["x_realtime"], v["wer"], v["clip_s"], per_rep[n] and median(per_rep[n])]
        for n, v in candidates.items()
    ]
    rows.append(
        [
            "suite (vtx up)",
            suite_total,
            long.seconds / suite_total if done else None,
            suite_wer,
            median(clip_suite),
            None,
        ]
    )
    say(table(["configuration", "seconds", "x realtime", "WER", "clip s", "suite speed-up"], rows))
    say(f"best baseline: {best} ({record['baseline']['best_rule']}); fastest: {fastest}")
    say("")
    say("peak RSS per service (MB): " + ", ".join(f"{k} {v}" for k, v in sorted(peaks.items())))
    say("")
    for t in targets:
        say(t.line())


def _write(record: dict[str, Any], out: Path, say: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    png = report.plot(record, out / f"bench-{stamp}.png")
    say("")
    say(f"record: {path}")
    say(f"plot:   {png}" if png else "plot:   skipped (pip install matplotlib, or '.[bench]')")


def _printer() -> Any:
    def say(line: str) -> None:
        print(line, flush=True)

    return say
