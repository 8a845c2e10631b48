"""From one run's measurements to medians, paired ratios, target verdicts and the tables.

Ratios are taken per repetition (suite and baseline ran side by side, so the machine's
noise they shared cancels) and then their median is reported; throughput is audio
seconds over wall seconds (x real time).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bench import baseline, media, speakers, suite
from bench.report import fastest, median, most_accurate, paired_ratios, pick_best, table
from bench.targets import Figures, verdicts
from bench.wer import corpus_error_rate, word_error_rate


@dataclass
class Measured:
    """Everything timed in one run, one entry per repetition."""

    base_long: dict[str, list[baseline.Run]] = field(default_factory=dict)
    suite_long: list[suite.JobRun] = field(default_factory=list)
    base_clip: dict[str, list[float]] = field(default_factory=dict)
    suite_clip: list[float] = field(default_factory=list)
    suite_batch: list[suite.BatchRun] = field(default_factory=list)
    loop_s: list[float] = field(default_factory=list)
    loop_texts: list[str] = field(default_factory=list)
    loop_name: str | None = None
    windows: list[dict[str, Any]] = field(default_factory=list)
    speakers: list[speakers.Runs] = field(default_factory=list)
    speakers_skipped: str | None = None  # why the speakers scenario measured nothing

    def best(self, long: media.TestMedia, tolerance: float) -> str | None:
        """The best baseline so far: fastest within `tolerance` of the most accurate."""
        runs = {n: r for n, r in self.base_long.items() if r}
        if not runs:
            return None
        wers = {n: word_error_rate(long.reference, r[-1].text) for n, r in runs.items()}
        return pick_best(
            wers, {n: median([x.total_s for x in r]) for n, r in runs.items()}, tolerance
        )


def _opt(value: float) -> float | None:
    return None if value != value else value  # NaN (no runs) -> None


def long_section(m: Measured, long: media.TestMedia, tolerance: float) -> dict[str, Any]:
    candidates: dict[str, Any] = {}
    for name, runs in m.base_long.items():
        total = median([r.total_s for r in runs])
        candidates[name] = {
            "runs_s": [round(r.total_s, 3) for r in runs],
            "decode_s": median([r.decode_s for r in runs]),
            "transcribe_s": median([r.transcribe_s for r in runs]),
            "total_s": total,
            "x_realtime": long.seconds / total,
            "wer": median([word_error_rate(long.reference, r.text) for r in runs]),
            "suite_speedup": _opt(
                median(paired_ratios([r.total_s for r in runs], [j.total_s for j in m.suite_long]))
            ),
            "text": runs[-1].text,
        }
    done = [r for r in m.suite_long if r.status == "completed"]
    suite_total = median([r.total_s for r in done])
    wers = {n: float(v["wer"]) for n, v in candidates.items()}
    seconds = {n: float(v["total_s"]) for n, v in candidates.items()}
    return {
        "seconds_of_audio": long.seconds,
        "candidates": candidates,
        "best": pick_best(wers, seconds, tolerance) if wers else None,
        "fastest": fastest(seconds) if seconds else None,
        "most_accurate": most_accurate(wers) if wers else None,
        "suite": {
            "runs": [
                dataclasses.asdict(r) | {"text": r.text[:200], "words": None} for r in m.suite_long
            ],
            "total_s": _opt(suite_total),
            "x_realtime": _opt(long.seconds / suite_total),
            "wer": _opt(median([word_error_rate(long.reference, r.text) for r in done])),
            "rss_rise_mb": m.windows,
        },
    }


def batch_section(
    m: Measured, files: list[media.TestMedia], long_xrt: list[float]
) -> dict[str, Any]:
    audio = sum(f.seconds for f in files)
    refs = [f.reference for f in files]
    suite_s = [b.total_s for b in m.suite_batch]
    xrt = [audio / s for s in suite_s]
    n = len(files)
    loop_wers = [
        corpus_error_rate(list(zip(refs, m.loop_texts[i : i + n], strict=True)))
        for i in range(0, len(m.loop_texts), n)
    ]
    return {
        "files": n,
        "seconds_of_audio": audio,
        "suite": {
            "runs_s": [round(s, 2) for s in suite_s],
            "accepted_s": [round(b.accepted_s, 2) for b in m.suite_batch],
            "failed": [len(b.failed) for b in m.suite_batch],
            "total_s": _opt(median(suite_s)),
            "x_realtime": _opt(median(xrt)),
            "wer": _opt(
                median(
                    [
                        corpus_error_rate(list(zip(refs, b.texts, strict=True)))
                        for b in m.suite_batch
                    ]
                )
            ),
        },
        "loop": {
            "candidate": m.loop_name,
            "runs_s": [round(s, 2) for s in m.loop_s],
            "total_s": _opt(median(m.loop_s)),
            "x_realtime": _opt(audio / median(m.loop_s)),
            "wer": _opt(median(loop_wers)),
        },
        "vs_long": _opt(median(paired_ratios(xrt, long_xrt))),
        "vs_loop": _opt(median(paired_ratios(m.loop_s, suite_s))),
    }


def clip_section(m: Measured, best: str | None) -> dict[str, Any]:
    base = m.base_clip.get(best or "", [])
    overheads = [a - b for a, b in zip(m.suite_clip, base, strict=False)]
    return {
        "suite_s": _opt(median(m.suite_clip)),
        "baselines_s": {n: median(v) for n, v in m.base_clip.items()},
        "overhead_ms": _opt(median(overheads) * 1000),
        "overhead_per_rep_ms": [round(x * 1000, 1) for x in overheads],
    }


def figures(
    long: dict[str, Any] | None,
    batch: dict[str, Any] | None,
    clip: dict[str, Any] | None,
    memory: dict[str, Any],
    speakers_sec: dict[str, Any] | None = None,
) -> Figures:
    speedups = {} if long is None else long["candidates"]
    fastest_name = None if long is None else long["fastest"]
    accurate = None if long is None else long["most_accurate"]
    return Figures(
        long_vs_fastest=speedups.get(fastest_name, {}).get("suite_speedup"),
        suite_wer=None if long is None else long["suite"]["wer"],
        most_accurate_wer=speedups.get(accurate, {}).get("wer"),
        batch_vs_long=None if batch is None else batch["vs_long"],
        batch_vs_loop=None if batch is None else batch["vs_loop"],
        clip_overhead_ms=None if clip is None else clip["overhead_ms"],
        gateway_rise_mb=memory.get("gateway_upload", {}).get("gateway_rss_rise_mb"),
        splitter_rise_mb=(memory.get("splitter_long", {}).get("rss_rise_mb") or {}).get("splitter"),
        speakers=None if speakers_sec is None else speakers.figures(speakers_sec),
    )


def lines(record: dict[str, Any], tolerance: float) -> list[str]:
    """The printed report: one table per scenario, the verdicts, the command."""
    out: list[str] = []
    long, batch, clip = record.get("long"), record.get("batch"), record.get("clip")
    if long:
        rows: list[list[object]] = [
            [n, v["total_s"], v["x_realtime"], v["wer"], v["suite_speedup"]]
            for n, v in long["candidates"].items()
        ]
        s = long["suite"]
        rows.append(["suite (vtx up)", s["total_s"], s["x_realtime"], s["wer"], None])
        out += [
            f"long file ({long['seconds_of_audio']:.0f} s of speech), medians:",
            table(["configuration", "seconds", "x realtime", "WER", "suite / it"], rows),
            f"best baseline: {long['best']} (fastest within {tolerance} WER of the most "
            f"accurate, {long['most_accurate']}); fastest: {long['fastest']}",
            "",
        ]
    if batch:
        s, lp = batch["suite"], batch["loop"]
        rows = [
            ["suite, all at once", s["total_s"], s["x_realtime"], s["wer"], sum(s["failed"])],
            [f"loop: {lp['candidate']}", lp["total_s"], lp["x_realtime"], lp["wer"], 0],
        ]
        out += [
            f"batch ({batch['files']} files, {batch['seconds_of_audio']:.0f} s), medians:",
            table(["configuration", "seconds", "x realtime", "WER", "failed"], rows),
            "",
        ]
    if clip:
        rows = [
            ["suite (vtx up)", clip["suite_s"]],
            *([n, v] for n, v in clip["baselines_s"].items()),
        ]
        out += ["short clip, medians:", table(["configuration", "seconds"], rows), ""]
    spk = record.get("speakers")
    if spk:
        out += ["speakers (speakers=auto, against the same file without), medians:"]
        if spk["skipped"]:
            out += [f"not measured: {spk['skipped']}"]
        if spk["conversations"]:
            out += [table(speakers.HEADERS, speakers.table_rows(spk))]
        out += [""]
    out += [t["line"] for t in record["targets"]]
    return out


def verdict_rows(record: dict[str, Any], tolerance: float) -> list[dict[str, Any]]:
    long = record.get("long") or {}
    f = figures(
        record.get("long"),
        record.get("batch"),
        record.get("clip"),
        record.get("memory", {}),
        record.get("speakers"),
    )
    loop = (record.get("batch") or {}).get("loop", {}).get("candidate")
    targets = verdicts(f, tolerance, str(long.get("fastest")), str(record.get("best")), loop)
    return [dataclasses.asdict(t) | {"met": t.met, "line": t.line()} for t in targets]
