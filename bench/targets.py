"""The targets of issue 13, judged from one run's medians.

- long file: suite throughput >= 1.0x the FASTEST baseline's, and suite WER <= the MOST
  ACCURATE baseline's WER + the tolerance (0.01);
- batch: suite throughput >= 0.85x its own long-file throughput, and >= 1.0x the best
  baseline looping over the same files in one process;
- short clip: the suite's overhead over the best baseline <= 300 ms;
- memory (when measured): gateway RSS rise on a big upload <= 50 MB, splitter <= 100 MB;
- speakers (issue 14, when the scenario ran): >= 90% of words on the right speaker on
  every 4-voice conversation, exactly 4 speakers found on each, one voice cut apart and
  re-ordered found as exactly one speaker, both channels of the stereo file exact.
A figure that was not measured gives a target "not measured", never "met".
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import Target

LONG_VS_FASTEST = 1.0
BATCH_VS_LONG = 0.85
BATCH_VS_LOOP = 1.0
CLIP_OVERHEAD_MS = 300.0
GATEWAY_RISE_MB = 50.0
SPLITTER_RISE_MB = 100.0
WORDS_RIGHT = 0.90
STEREO_CHANNELS = 2


@dataclass(frozen=True)
class SpeakerFigures:
    """The speakers scenario's worst cases; None where not measured."""

    four_voices_words_right: float | None = None  # the lowest over the 4-voice conversations
    four_voices_count_off: int | None = None  # the largest |found - 4| over them
    one_voice_found: int | None = None  # speakers found on the one-voice conversation
    stereo_channels_exact: int | None = None


@dataclass(frozen=True)
class Figures:
    """Medians of paired per-repetition ratios, and WERs; None where not measured."""

    long_vs_fastest: float | None = None
    suite_wer: float | None = None
    most_accurate_wer: float | None = None
    batch_vs_long: float | None = None
    batch_vs_loop: float | None = None
    clip_overhead_ms: float | None = None
    gateway_rise_mb: float | None = None
    splitter_rise_mb: float | None = None
    speakers: SpeakerFigures | None = None  # None: the scenario did not run


def verdicts(
    f: Figures, wer_tolerance: float, fastest: str, best: str, loop: str | None = None
) -> list[Target]:
    """The targets in report order; `loop` names the baseline the batch loop ran (the
    best one when it was chosen), `best` the one the clip is compared with."""
    wer_gap = None
    if f.suite_wer is not None and f.most_accurate_wer is not None:
        wer_gap = f.suite_wer - f.most_accurate_wer
    accurate = "-" if f.most_accurate_wer is None else f"{f.most_accurate_wer:.3f}"
    targets = [
        Target(f"long: suite / fastest ({fastest})", f.long_vs_fastest, LONG_VS_FASTEST, True, "x"),
        Target(f"long: WER suite - most accurate ({accurate})", wer_gap, wer_tolerance, False),
        Target("batch: suite / suite's long file", f.batch_vs_long, BATCH_VS_LONG, True, "x"),
        Target(f"batch: suite / loop of {loop or best}", f.batch_vs_loop, BATCH_VS_LOOP, True, "x"),
        Target(f"clip: overhead over {best}", f.clip_overhead_ms, CLIP_OVERHEAD_MS, False, " ms"),
    ]
    if f.gateway_rise_mb is not None or f.splitter_rise_mb is not None:
        targets += [
            Target(
                "gateway RSS rise, big upload", f.gateway_rise_mb, GATEWAY_RISE_MB, False, " MB"
            ),
            Target(
                "splitter RSS rise, long file", f.splitter_rise_mb, SPLITTER_RISE_MB, False, " MB"
            ),
        ]
    if f.speakers is not None:
        targets += speaker_verdicts(f.speakers)
    return targets


def speaker_verdicts(s: SpeakerFigures) -> list[Target]:
    def opt(v: int | None) -> float | None:
        return None if v is None else float(v)

    return [
        Target("speakers: words right, 4 voices (worst)", s.four_voices_words_right,
               WORDS_RIGHT, True),
        Target("speakers: |found - 4|, 4 voices (worst)", opt(s.four_voices_count_off), 0, None),
        Target("speakers: found, one voice cut apart", opt(s.one_voice_found), 1, None),
        Target("speakers: stereo channels exact", opt(s.stereo_channels_exact),
               STEREO_CHANNELS, None),
    ]  # fmt: skip
