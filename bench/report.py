"""Turning measurements into ratios, a printed summary, a JSON record and a plot."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    higher_is_better: bool | None  # None: the value must be the limit (a count)
    unit: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.higher_is_better is None:
            return self.value == self.limit
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def line(self) -> str:
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[self.met]
        sign = {True: ">=", False: "<=", None: "=="}[self.higher_is_better]
        value = "-" if self.value is None else f"{self.value:.3f}{self.unit}"
        return f"{self.name:<44} {value:>12}  (target {sign} {self.limit:g}{self.unit})  {verdict}"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def pick_best(wers: dict[str, float], seconds: dict[str, float], tolerance: float) -> str:
    """The fastest candidate whose WER is within `tolerance` of the most accurate one."""
    floor = min(wers.values())
    acceptable = [n for n in wers if wers[n] <= floor + tolerance + 1e-12]
    return min(acceptable, key=lambda n: seconds[n])


def most_accurate(wers: dict[str, float]) -> str:
    return min(wers, key=lambda n: wers[n])


def fastest(seconds: dict[str, float]) -> str:
    return min(seconds, key=lambda n: seconds[n])


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-repetition ratios of runs made side by side (the noise they share cancels)."""
    return [a / b for a, b in zip(numerators, denominators, strict=False) if b > 0]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table, right-aligned numbers, for the terminal and the issue."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def fmt(row: Sequence[str]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(list(headers)), rule, *(fmt(r) for r in cells)])


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def mb(value: int | float | None) -> float | None:
    return None if value is None else round(value / MB, 1)


def plot(record: dict[str, Any], path: Path) -> Path | None:
    """Where the time goes: the suite's stages on a timeline, beside the baselines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    suite_runs: list[dict[str, Any]] = record["long"]["suite"]["runs"]
    baseline: dict[str, Any] = record["long"]["candidates"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), height_ratios=[1.1, 1])
    lanes = stage_lanes(suite_runs[-1]) if suite_runs else []
    colours = {
        "upload": "tab:blue",
        "queued": "tab:gray",
        "split": "tab:orange",
        "transcribe": "tab:green",
        "merge": "tab:red",
        "fetch": "tab:purple",
        "decode": "tab:olive",
    }
    for i, (name, start, end) in enumerate(lanes):
        top.barh(i, max(end - start, 0.02), left=start, color=colours.get(name, "k"))
        top.text(end, i, f" {end - start:.2f} s", va="center", fontsize=8)
    top.set_yticks(range(len(lanes)), [lane[0] for lane in lanes])
    top.invert_yaxis()
    top.set_xlabel("seconds from the first byte of the upload")
    top.set_title(f"suite, {record['media']['seconds']:.0f} s of audio: stages (last run)")
    names = [*baseline, "suite"]
    for i, name in enumerate(names):
        if name == "suite":
            run = suite_runs[-1] if suite_runs else None
            parts = stacked_suite(run) if run else []
        else:
            c = baseline[name]
            parts = [("decode", c["decode_s"]), ("transcribe", c["transcribe_s"])]
        left = 0.0
        for label, seconds in parts:
            bottom.barh(i, seconds, left=left, color=colours.get(label, "k"), label=label)
            left += seconds
        bottom.text(left, i, f" {left:.1f} s", va="center", fontsize=8)
    handles, labels = bottom.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=False))
    bottom.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
    bottom.set_yticks(range(len(names)), names)
    bottom.invert_yaxis()
    bottom.set_xlabel("seconds (median); baselines: decode + transcribe in one process")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def stage_lanes(run: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(stage, start, end) from the job's timestamps and the /metrics stage sums."""
    accepted = float(run["accepted_s"])
    started = float(run["started_s"] if run["started_s"] is not None else accepted)
    finished = float(run["finished_s"] if run["finished_s"] is not None else run["total_s"])
    stages: dict[str, float] = run["stages"]
    split_end = started + stages.get("split", 0.0)
    chunks = max(int(run["chunks"] or 1), 1)
    merge = stages.get("merge", 0.0)
    first_chunk = started + stages.get("split", 0.0) / chunks
    return [
        ("upload", 0.0, accepted),
        ("queued", accepted, started),
        ("split", started, split_end),
        ("transcribe", first_chunk, max(finished - merge, first_chunk)),
        ("merge", finished - merge, finished),
        ("fetch", finished, float(run["total_s"])),
    ]


def stacked_suite(run: dict[str, Any]) -> list[tuple[str, float]]:
    """The user's wait cut into consecutive parts (split overlaps transcription)."""
    lanes = {name: (start, end) for name, start, end in stage_lanes(run)}
    accepted = lanes["upload"][1]
    started = lanes["queued"][1]
    merge_start, finished = lanes["merge"]
    return [
        ("upload", accepted),
        ("queued", started - accepted),
        ("split", max(lanes["transcribe"][0] - started, 0.0)),
        ("transcribe", max(merge_start - lanes["transcribe"][0], 0.0)),
        ("merge", finished - merge_start),
        ("fetch", float(run["total_s"]) - finished),
    ]
