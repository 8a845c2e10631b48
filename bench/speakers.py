"""The `speakers` scenario: who said what, judged on conversations with known speakers.

Each conversation goes through the suite twice per repetition, with `speakers=auto` and
without speakers, so the cost of diarization is a ratio of two runs made side by side.
The words of the first run are scored against the conversation's truth: mono files by
the share of words given the right speaker after the best mapping of labels (the
reference turns, `bench.speaker_score`); the stereo file, whose two speakers talk over
each other so that no turn boundary can be drawn, by channel: each channel's reference
sentence must come out whole under one label of its own ("exact").
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.conversations import RefTurn, assemble
from bench.report import median, paired_ratios
from bench.suite import JobRun
from bench.targets import SpeakerFigures
from bench.wer import align, normalise

FOUR_VOICES = "four voices"  # different recordings, different voices: the 90% target
ONE_VOICE = "one voice"  # one recording cut apart and re-ordered: must stay one speaker
MONO_MIX = "mono mix"  # the stereo file mixed down: two voices, talking at once
STEREO = "stereo"  # the stereo file as it is: one speaker per channel
STEREO_FILE = "stereo_diarization.wav"
CHANNELS = ("left", "right")
MAX_LABELS = 12  # more labels than this on a 2-channel file is a failure, not a search


@dataclass(frozen=True)
class Case:
    """One conversation: the file, what it is, and its truth (turns, or channel texts)."""

    name: str
    path: Path
    kind: str
    speakers: int
    turns: tuple[RefTurn, ...] = ()  # mono files: who talks when (bench/conversations.py)
    channels: tuple[str, ...] = ()  # the stereo case: each channel's reference text

    @property
    def route(self) -> str:
        """The route the suite should take for this file."""
        return "channels" if self.channels else "voices"


@dataclass(frozen=True)
class Score:
    """How one run labelled one conversation's words."""

    # Share of words on the right speaker: of the transcript's words on a mono file, of
    # the reference's on the stereo one; None: nothing to count.
    words_right: float | None
    found: int  # distinct speaker labels on the transcript's words
    channels_exact: int | None = None  # the stereo case: channels that came out whole


def found_speakers(words: Sequence[Mapping[str, Any]]) -> int:
    return len({w["speaker"] for w in words if w.get("speaker")})


def by_speaker(words: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each label's words, in time order, as one text (words without a label dropped)."""
    texts: dict[str, list[str]] = {}
    for w in sorted(words, key=lambda w: float(w["start"])):
        if w.get("speaker"):
            texts.setdefault(str(w["speaker"]), []).append(str(w["word"]))
    return {k: " ".join(v) for k, v in texts.items()}


def channel_score(channels: Sequence[str], words: Sequence[Mapping[str, Any]]) -> Score:
    """Score a one-speaker-per-channel file from its channels' reference texts.

    Each label may stand for at most one channel; the mapping chosen is the one that
    puts the most reference words on the right label (a word counts when the alignment
    of the label's text with the channel's matches it). A channel is exact when its
    label's text is its reference word for word: nothing missing, wrong or added."""
    refs = [normalise(text) for text in channels]
    hyps = {label: normalise(text) for label, text in by_speaker(words).items()}
    total = sum(len(r) for r in refs)
    # A channel may also get no label (None): then none of its words are right.
    candidates: list[str | None] = [*sorted(hyps)[:MAX_LABELS], *[None] * len(refs)]
    best_hits, best_exact = 0, 0
    for chosen in itertools.permutations(candidates, len(refs)):
        hits = exact = 0
        for ref, label in zip(refs, chosen, strict=True):
            if label is None:
                continue
            result = align(ref, hyps[label])
            hits += result.reference_words - result.substitutions - result.deletions
            exact += result.errors == 0
        if (hits, exact) > (best_hits, best_exact):
            best_hits, best_exact = hits, exact
    return Score(
        words_right=best_hits / total if total else None,
        found=found_speakers(words),
        channels_exact=best_exact,
    )


def stereo_case(media_dir: Path) -> Case:
    """The stereo file as it is, with each channel's sentence from transcripts.json."""
    facts = json.loads((media_dir / "transcripts.json").read_text())
    texts = facts[STEREO_FILE]["channels"]
    return Case(
        name="stereo (channels)",
        path=media_dir / STEREO_FILE,
        kind=STEREO,
        speakers=len(CHANNELS),
        channels=tuple(str(texts[c]) for c in CHANNELS),
    )


@dataclass
class Runs:
    """One conversation's runs, one per repetition on each side, and their scores."""

    case: Case
    with_speakers: list[JobRun] = field(default_factory=list)
    without: list[JobRun] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)


def diarize_share(run: JobRun) -> float | None:
    """The share of the job's wall time the speakers service spent on it (it runs beside
    the transcription, so this is work done, not the wait it adds); None: no diarization."""
    seconds = run.stages.get("speakers")
    return None if not seconds or run.total_s <= 0 else seconds / run.total_s


def _median_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(median(present)) if present else None


def row(r: Runs) -> dict[str, Any]:
    """One conversation's medians over the repetitions, and its runs."""
    done = [j for j in r.with_speakers if j.status == "completed"]
    plain = [j for j in r.without if j.status == "completed"]
    found = _median_or_none([float(s.found) for s in r.scores])
    exact = _median_or_none([s.channels_exact for s in r.scores])
    return {
        "kind": r.case.kind,
        "file": r.case.path.name,
        "speakers": r.case.speakers,
        "found": None if found is None else round(found),
        "words": _median_or_none([len(j.words) for j in done]),  # what the score counted
        "words_right": _median_or_none([s.words_right for s in r.scores]),
        "channels_exact": None if exact is None else round(exact),
        "route_expected": r.case.route,
        "route": done[-1].speaker_route if done else None,
        "with_s": _median_or_none([j.total_s for j in done]),
        "without_s": _median_or_none([j.total_s for j in plain]),
        "ratio": _median_or_none(
            list(paired_ratios([j.total_s for j in done], [j.total_s for j in plain]))
        ),
        "diarize_share": _median_or_none([diarize_share(j) for j in done]),
        "failed": [
            j.error or j.status for j in (*r.with_speakers, *r.without) if j.status != "completed"
        ],
        "runs": [
            {"with_s": round(a.total_s, 3), "stages": a.stages, "route": a.speaker_route}
            for a in r.with_speakers
        ],
    }


def section(runs: Sequence[Runs], skipped: str | None) -> dict[str, Any]:
    """The scenario's part of the record: a row per conversation, or why none ran."""
    return {"skipped": skipped, "conversations": {r.case.name: row(r) for r in runs}}


def figures(sec: Mapping[str, Any]) -> SpeakerFigures:
    """The worst case of each kind, for the targets; None where no run of it scored."""
    rows = list(sec["conversations"].values())
    four = [r for r in rows if r["kind"] == FOUR_VOICES]
    one = [r for r in rows if r["kind"] == ONE_VOICE]
    stereo = [r for r in rows if r["kind"] == STEREO]

    def worst(values: Sequence[float | None], pick: Any) -> Any:
        return None if not values or None in values else pick(values)

    def furthest_from_one(values: Sequence[int]) -> int:
        return max(values, key=lambda v: abs(v - 1))

    return SpeakerFigures(
        four_voices_words_right=worst([r["words_right"] for r in four], min),
        four_voices_count_off=worst(
            [None if r["found"] is None else abs(r["found"] - r["speakers"]) for r in four], max
        ),
        one_voice_found=worst([r["found"] for r in one], furthest_from_one),
        stereo_channels_exact=worst([r["channels_exact"] for r in stereo], min),
    )


HEADERS = (
    "conversation", "speakers", "found", "words", "words right", "route",
    "with (s)", "without (s)", "with / without", "diarize share",
)  # fmt: skip


def table_rows(sec: Mapping[str, Any]) -> list[list[object]]:
    out: list[list[object]] = []
    for name, r in sec["conversations"].items():
        right = r["words_right"]
        route = r["route"] or "-"
        if r["route"] != r["route_expected"]:
            route += f" (want {r['route_expected']})"
        out.append([
            name, r["speakers"], r["found"],
            None if r["words"] is None else round(r["words"]),
            None if right is None else f"{right:.1%}",
            route, r["with_s"], r["without_s"], r["ratio"],
            None if r["diarize_share"] is None else f"{r['diarize_share']:.0%}",
        ])  # fmt: skip
    return out


def score(case: Case, run: JobRun) -> Score:
    """One run's words against the case's truth. A job that did not complete labelled no
    word: it scores nothing (measured, and failed), never "not measured"."""
    if run.status != "completed":
        return Score(0.0, 0, 0 if case.channels else None)
    if case.channels:
        return channel_score(case.channels, run.words)
    return turn_score(case.turns, run.words)


def turn_score(turns: Sequence[RefTurn], words: Sequence[Mapping[str, Any]]) -> Score:
    """A mono file's words against its reference turns: each word, at its middle, on the
    voice talking then, after the best one-to-one mapping of labels onto voices
    (bench/speaker_score.py). A word with no label takes its nearest labelled word's, as
    the merge gives a word the nearest turn. No words at all: nothing right."""
    from bench.speaker_score import score_words  # scipy: with the speakers extra only

    labelled = [RefTurn(w["start"], w["end"], str(w["speaker"])) for w in words if w["speaker"]]
    if not labelled:
        return Score(0.0, 0)
    got = score_words([(w["start"], w["end"]) for w in words], turns, labelled)
    return Score(got.accuracy, got.found_speakers)


def kind(name: str) -> str:
    """What a conversation of bench/conversations.py is, from its name."""
    if name.startswith("four_voices"):
        return FOUR_VOICES
    if name.endswith("_shuffled"):
        return ONE_VOICE
    if name == "stereo_mix":
        return MONO_MIX
    raise ValueError(f"no kind for conversation {name!r}")


def cases(media_dir: Path, folder: Path) -> list[Case]:
    """Every conversation, written under `folder`, then the stereo file as it is."""
    built = assemble(folder, media_dir)
    out = [
        Case(name, c.path, kind(name), c.voices, turns=tuple(c.turns)) for name, c in built.items()
    ]
    return [*out, stereo_case(media_dir)]
