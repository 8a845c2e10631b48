"""Who said each word: speakers joined to a merged transcript, and a user's names for them.

Two routes reach here (Job.speaker_route). "voices": the speakers service found turns
over the whole file, and each word takes the speaker whose turn overlaps it most (a
word in no turn: the nearest turn), so identity holds across chunks. "channels": each
channel was transcribed on its own and is one speaker, "S{channel+1}"; the channels'
segments are interleaved by start and may overlap in time, as two people do.

A speaker change inside a Whisper segment starts a new segment, so every segment has
one speaker and every renderer can show it without looking at words.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.models import SpeakerRoute
from shared.transcript import ChunkResult, Segment, TranscriptDoc, Word, merge_chunks

MAX_NAME_CHARS = 100  # a name longer than a subtitle line is no name
_M = TypeVar("_M", Word, Segment)


@dataclass(frozen=True, slots=True)
class Turn:
    """A stretch of the file in which one speaker talks (whole-file seconds)."""

    start: float
    end: float
    speaker: str  # "S1", "S2", ... in order of first appearance

    def as_row(self) -> dict[str, Any]:
        """The shape stored in `Diarization.turns` (read back by `parse_turns`)."""
        return {"start": round(self.start, 3), "end": round(self.end, 3), "speaker": self.speaker}


def parse_turns(raw: Iterable[Mapping[str, Any]]) -> list[Turn]:
    """Stored turns, in order of start; a malformed one is skipped, not fatal: it was
    written by the speakers service, and a transcript with one turn fewer beats a job
    that can never merge."""
    turns = []
    for row in raw:
        try:
            start, end, speaker = float(row["start"]), float(row["end"]), str(row["speaker"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(start) and math.isfinite(end) and end >= start and speaker:
            turns.append(Turn(start, end, speaker))
    turns.sort(key=lambda t: (t.start, t.end))
    return turns


def join_speakers(
    results: Sequence[ChunkResult],
    route: str | None,
    turns: Sequence[Mapping[str, Any]] | None,
) -> list[Segment]:
    """The job's merged segments, with speakers where the job has them."""
    if route == SpeakerRoute.channels:
        return merge_channels(results)
    segments = merge_chunks(results)
    if turns:
        return attribute(segments, parse_turns(turns))
    return segments


def merge_channels(results: Iterable[ChunkResult]) -> list[Segment]:
    """Each channel's chunks merged on their own (one channel's times are monotonic,
    two channels' need not be), labelled by channel, then interleaved by start."""
    by_channel: dict[int | None, list[ChunkResult]] = defaultdict(list)
    for result in results:
        by_channel[result.channel].append(result)
    merged: list[tuple[float, int, Segment]] = []
    for channel, chunks in by_channel.items():
        label = None if channel is None else f"S{channel + 1}"
        for segment in merge_chunks(chunks):
            merged.append(
                (segment.start, -1 if channel is None else channel, _label(segment, label))
            )
    merged.sort(key=lambda item: (item[0], item[1]))
    return [_with(seg, id=i) for i, (_, _, seg) in enumerate(merged)]


def _label(segment: Segment, speaker: str | None) -> Segment:
    words = [_with(w, speaker=speaker) for w in segment.words]
    return _with(segment, speaker=speaker, words=words)


def _with(model: _M, **changes: Any) -> _M:
    """A copy with `changes`, of values already valid: no validation and none of
    `model_copy`'s copying of private state, over the 20 000 words of a 2-hour file."""
    return type(model).model_construct(**{**model.__dict__, **changes})


def attribute(segments: Sequence[Segment], turns: Sequence[Turn]) -> list[Segment]:
    """Every word labelled with its speaker and every segment cut where the speaker
    changes (ids renumbered, a cut segment's text rebuilt from its words). A segment
    without words is one piece, labelled by its own span. No turns: no change."""
    if not turns:
        return list(segments)
    spans: list[tuple[float, float]] = []
    for segment in segments:
        if segment.words:
            spans.extend((w.start, w.end) for w in segment.words)
        else:
            spans.append((segment.start, segment.end))
    labels = iter(speakers_of(spans, turns))
    out: list[Segment] = []
    for segment in segments:
        if not segment.words:
            out.append(_with(segment, speaker=next(labels)))
            continue
        out.extend(_split(segment, [next(labels) for _ in segment.words]))
    return [_with(seg, id=i) for i, seg in enumerate(out)]


def speakers_of(spans: Sequence[tuple[float, float]], turns: Sequence[Turn]) -> list[str]:
    """For each (start, end), the speaker of the turn overlapping it most; with none
    overlapping, of the nearest turn (ties: the earlier turn). `turns` non-empty.

    One sweep over both in time order, keeping only the turns that can still overlap
    the current span: O((spans + turns) log turns), bounded on a 2-hour file."""
    ordered = sorted(turns, key=lambda t: (t.start, t.end))
    result = [""] * len(spans)
    active: list[tuple[float, int]] = []  # (end, index) of turns begun, not yet passed
    gone = -1  # of the turns passed, the one ending last: the nearest before a gap
    nxt = 0
    for at in sorted(range(len(spans)), key=lambda i: spans[i]):
        start, end = spans[at]
        while nxt < len(ordered) and ordered[nxt].start <= end:
            heapq.heappush(active, (ordered[nxt].end, nxt))
            nxt += 1
        while active and active[0][0] < start:
            _, index = heapq.heappop(active)
            if gone < 0 or ordered[index].end >= ordered[gone].end:
                gone = index
        candidates = [index for _, index in active]
        candidates += [i for i in (gone, nxt) if 0 <= i < len(ordered)]
        # Overlap, negative for a gap: the largest is the most overlap, else the nearest.
        best = max(
            candidates,
            key=lambda i: (min(end, ordered[i].end) - max(start, ordered[i].start), -i),
        )
        result[at] = ordered[best].speaker
    return result


def _split(segment: Segment, labels: list[str]) -> list[Segment]:
    """A segment cut into runs of one speaker. A piece glued to the word before it
    (",000" after " 1") keeps that word's speaker: a word is never cut in two."""
    runs: list[list[Word]] = []
    speakers: list[str] = []
    for i, (word, label) in enumerate(zip(segment.words, labels, strict=True)):
        if i > 0 and not word.word[:1].isspace():
            label = speakers[-1]
        labelled = _with(word, speaker=label)
        if speakers and speakers[-1] == label:
            runs[-1].append(labelled)
        else:
            runs.append([labelled])
            speakers.append(label)
    if len(runs) == 1:
        return [_with(segment, speaker=speakers[0], words=runs[0])]
    last = len(runs) - 1
    return [
        Segment(
            start=min(segment.start, run[0].start) if k == 0 else run[0].start,
            end=max(segment.end, run[-1].end) if k == last else run[-1].end,
            text="".join(w.word for w in run),
            words=run,
            speaker=speaker,
        )
        for k, (run, speaker) in enumerate(zip(runs, speakers, strict=True))
    ]


def name_speakers(doc: TranscriptDoc, names: Mapping[str, str] | None) -> TranscriptDoc:
    """The doc with a user's names for its labels ({"S1": "Ana"}), for every renderer.

    The gateway calls it before rendering any download. Only labels the doc has are
    named; a name is put on one line and cut to MAX_NAME_CHARS, and an empty one leaves
    the label as it was."""
    if not names:
        return doc
    present = {s.speaker for s in doc.segments if s.speaker is not None}
    clean = {}
    for label, name in names.items():
        shown = " ".join(str(name).split())[:MAX_NAME_CHARS].strip()
        if label in present and shown:
            clean[label] = shown
    return doc.model_copy(update={"speaker_names": clean})
