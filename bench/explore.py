"""`python -m bench.explore`: which chunk length, worker layout and decoder the suite should use.

Every suite configuration runs at once (one `vtx up` each, idle while another works) and
jobs go round-robin among them per chunk length, so the machine's noise is shared.
Batched inference, not yet in the engine, is measured standalone on chunks cut by the
splitter's own `split()`, with the same worker layouts the transcriber would use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import baseline, media, suite
from bench.report import table
from bench.wer import word_error_rate


@dataclass(frozen=True)
class Layout:
    workers: int
    threads: int

    @property
    def label(self) -> str:
        return f"{self.workers}x{self.threads}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.explore", description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--chunks", default="30,60,120,240", help="chunk lengths in seconds")
    p.add_argument("--layouts", default="2x1,1x2", help="workers x threads per worker")
    p.add_argument("--beams", default="1,5")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--media-dir", type=Path, default=media.SHARED_MEDIA, help="the recordings")
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--no-suite", action="store_true", help="only the standalone experiments")
    p.add_argument("--no-batched", action="store_true", help="skip standalone batched runs")
    p.add_argument("--quick", action="store_true", help="2 min file, 60 s chunks")
    p.add_argument("--out", type=Path, default=media.OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.chunks = min(args.minutes, 2.0), "60"
    return args


def layouts(spec: str) -> list[Layout]:
    out = []
    for item in spec.split(","):
        workers, _, threads = item.partition("x")
        out.append(Layout(int(workers), int(threads)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chunks = [float(c) for c in args.chunks.split(",")]
    beams = [int(b) for b in args.beams.split(",")]
    shapes = layouts(args.layouts)
    long = media.Library(args.media_dir).long_file(args.minutes * 60)
    print(f"file: {long.path.name}, {long.seconds:.1f} s", flush=True)
    rows: list[dict[str, Any]] = []
    loaded = baseline.load(args.model, "cpu")
    for c in baseline.CANDIDATES:  # the unchunked reference, for speed and WER
        r = baseline.run(loaded, c, long.path)
        rows.append(
            _row("unchunked " + c.name, "-", f"1x{loaded.threads}", r.total_s, long, r.text)
        )
        _show(rows[-1])
    if not args.no_batched:
        rows += batched_on_chunks(args, long, chunks, shapes)
    if not args.no_suite:
        rows += suite_grid(args, long, chunks, shapes, beams)
    ref = next((r for r in rows if r["config"] == "unchunked transcribe beam 5"), rows[0])
    for row in rows:
        row["speed_vs_unchunked_beam5"] = ref["seconds"] / row["seconds"]
        row["wer_vs_unchunked_beam5"] = row["wer"] - ref["wer"]
    print()
    print(
        table(
            ["configuration", "chunk s", "layout", "seconds", "x realtime", "WER", "dWER", "speed"],
            [
                [
                    r["config"],
                    r["chunk_s"],
                    r["layout"],
                    r["seconds"],
                    r["x_realtime"],
                    r["wer"],
                    r["wer_vs_unchunked_beam5"],
                    r["speed_vs_unchunked_beam5"],
                ]
                for r in rows
            ],
        )
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"explore-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"media": str(long.path), "rows": rows}, indent=2) + "\n")
    print(f"\nrecord: {path}")
    return 0


def _row(
    config: str, chunk: object, layout: str, seconds: float, long: media.TestMedia, text: str
) -> dict[str, Any]:
    return {
        "config": config,
        "chunk_s": chunk,
        "layout": layout,
        "seconds": round(seconds, 3),
        "x_realtime": round(long.seconds / seconds, 2),
        "wer": round(word_error_rate(long.reference, text), 4),
        "text": text[:300],
    }


def _show(row: dict[str, Any]) -> None:
    print(
        f"  {row['config']:<34} chunk {row['chunk_s']!s:>5} {row['layout']:>4}: "
        f"{row['seconds']:7.2f} s  {row['x_realtime']:6.1f}x  WER {row['wer']:.3f}",
        flush=True,
    )


def batched_on_chunks(
    args: argparse.Namespace, long: media.TestMedia, chunks: list[float], shapes: list[Layout]
) -> list[dict[str, Any]]:
    """BatchedInferencePipeline per splitter chunk, as the engine would run it."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from services.splitter.chunking import split
    from services.splitter.decode import decode_pcm
    from shared.speech_models import resolve_model

    rows = []
    models = {
        shape: WhisperModel(
            resolve_model(args.model),
            device="cpu",
            compute_type="int8",
            cpu_threads=shape.threads,
            num_workers=shape.workers,
        )
        for shape in shapes
    }
    for seconds in chunks:
        for shape in shapes:
            pipeline = BatchedInferencePipeline(models[shape])

            def one(samples: Any, pipeline: Any = pipeline) -> str:
                audio = samples.astype(np.float32) / 32768.0
                segments, _ = pipeline.transcribe(
                    audio,
                    language="en",
                    batch_size=args.batch_size,
                    beam_size=5,
                    word_timestamps=True,
                )
                return " ".join(s.text.strip() for s in segments)

            began = time.perf_counter()
            pieces = [c for _, c in split(decode_pcm(long.path, 1e9), seconds)]
            with ThreadPoolExecutor(shape.workers) as pool:
                texts = list(pool.map(one, pieces))
            took = time.perf_counter() - began
            rows.append(
                _row(
                    f"batched b={args.batch_size} per chunk",
                    seconds,
                    shape.label,
                    took,
                    long,
                    " ".join(texts),
                )
            )
            _show(rows[-1])
    return rows


def suite_grid(
    args: argparse.Namespace,
    long: media.TestMedia,
    chunks: list[float],
    shapes: list[Layout],
    beams: list[int],
) -> list[dict[str, Any]]:
    """One `vtx up` per (layout, beam); jobs per chunk length go round-robin among them."""
    configs = [(shape, beam) for shape in shapes for beam in beams]
    rows = []
    with tempfile.TemporaryDirectory(prefix="vtx-explore-") as tmp, contextlib.ExitStack() as stack:
        suites = {}
        for shape, beam in configs:
            env = {
                "VTX_MODEL": args.model,
                "VTX_DEVICE": "cpu",
                "VTX_TRANSCRIBER_WORKERS": str(shape.workers),
                "VTX_CPU_THREADS": str(shape.threads),
                "VTX_BEAM_SIZE": str(beam),
            }
            data = Path(tmp) / f"{shape.label}-b{beam}"
            suites[(shape, beam)] = stack.enter_context(suite.running(data, env))
        clip = media.Library(args.media_dir).clip()
        for s in suites.values():  # warm
            s.transcribe(clip.path)
        for i, seconds in enumerate(chunks):
            for k in range(len(configs)):
                shape, beam = configs[(i + k) % len(configs)]
                s = suites[(shape, beam)]
                s.idle()
                job = s.transcribe(long.path, {"chunk_seconds": f"{seconds:g}"})
                row = _row(
                    f"suite transcribe beam {beam}",
                    seconds,
                    shape.label,
                    job.total_s,
                    long,
                    job.text,
                )
                row["chunks"] = job.chunks
                row["status"] = job.status
                rows.append(row)
                _show(row)
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
