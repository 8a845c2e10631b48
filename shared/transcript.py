"""Transcript types, the merge of per-chunk results, and the output formats."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from enum import StrEnum

from pydantic import BaseModel, Field

from shared.subtitles import CueRules, build_cues


def _absent(value: object) -> bool:
    """A speaker is written only where one was found: transcripts without stay as they were."""
    return value is None


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float = 1.0
    speaker: str | None = Field(default=None, exclude_if=_absent)


class Segment(BaseModel):
    id: int = 0
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)
    speaker: str | None = Field(default=None, exclude_if=_absent)


class SpeakerTime(BaseModel):
    """One speaker of a transcript: its label, the name a user gave it, how long it spoke."""

    id: str
    name: str | None = None
    seconds: float


_LABEL = re.compile(r"S(\d+)")


def _label_order(label: str) -> tuple[int, int, str]:
    """S1, S2, ..., S10 in number order (not string order), anything else after."""
    m = _LABEL.fullmatch(label)
    return (0, int(m.group(1)), "") if m else (1, 0, label)


class TranscriptDoc(BaseModel):
    language: str | None = None
    language_probability: float | None = None
    duration: float = 0.0
    segments: list[Segment] = Field(default_factory=list)
    # A user's names for the labels (shared.speakers.name_speakers), shown by every
    # renderer; the stored segments keep the labels, so a rename never rewrites them.
    speaker_names: dict[str, str] = Field(default_factory=dict, exclude=True)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def speakers(self) -> list[SpeakerTime]:
        """Each speaker's total time (its segments' spans), computed from the segments
        on demand: one pass, and never out of step with them or with a rename."""
        seconds: dict[str, float] = defaultdict(float)
        for segment in self.segments:
            if segment.speaker is not None:
                seconds[segment.speaker] += max(segment.end - segment.start, 0.0)
        return [
            SpeakerTime(id=label, name=self.speaker_names.get(label), seconds=round(total, 3))
            for label, total in sorted(seconds.items(), key=lambda item: _label_order(item[0]))
        ]

    def name_of(self, label: str) -> str:
        """What a reader sees for a speaker: the user's name for it, else the label."""
        return self.speaker_names.get(label, label)


class ChunkResult(BaseModel):
    """One chunk's segments, already offset to the whole file, and the span it covers
    (`channel`: the channel it was cut from when each channel is one speaker)."""

    start: float
    end: float
    segments: list[Segment]
    channel: int | None = None


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def merge_chunks(chunks: Iterable[ChunkResult]) -> list[Segment]:
    """Join chunks in time order into one monotonic list of segments.

    Chunks are cut at quiet points and never overlap, so joining loses and doubles
    nothing; what needs care is Whisper's habit of stamping times a little past the
    end of its window, which would make a segment end after the next one starts.
    """
    merged: list[Segment] = []
    cursor = 0.0
    for chunk in sorted(chunks, key=lambda c: c.start):
        for segment in chunk.segments:
            start = max(_clamp(segment.start, chunk.start, chunk.end), cursor)
            words: list[Word] = []
            for word in segment.words:
                w_start = max(_clamp(word.start, chunk.start, chunk.end), cursor)
                w_end = max(_clamp(word.end, chunk.start, chunk.end), w_start)
                words.append(word.model_copy(update={"start": w_start, "end": w_end}))
                cursor = w_end
            end = max(_clamp(segment.end, chunk.start, chunk.end), start, cursor)
            cursor = end
            merged.append(
                Segment(
                    id=len(merged),
                    start=start,
                    end=end,
                    text=segment.text,
                    words=words,
                    speaker=segment.speaker,
                )
            )
    return merged


class Format(StrEnum):
    json = "json"
    txt = "txt"
    srt = "srt"
    vtt = "vtt"
    tsv = "tsv"
    diarized_json = "diarized_json"


MEDIA_TYPES: dict[Format, str] = {
    Format.json: "application/json",
    Format.txt: "text/plain; charset=utf-8",
    Format.srt: "application/x-subrip; charset=utf-8",
    Format.vtt: "text/vtt; charset=utf-8",
    Format.tsv: "text/tab-separated-values; charset=utf-8",
    Format.diarized_json: "application/json",
}


def timestamp(seconds: float, decimal: str) -> str:
    """`HH:MM:SS<decimal>mmm`, rounded to the millisecond (SRT uses ',', WebVTT '.')."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _who(doc: TranscriptDoc, label: str | None) -> str:
    """The speaker as a line shows it ("" when none), on one line."""
    return "" if label is None else _one_line(doc.name_of(label))


def render_txt(doc: TranscriptDoc) -> str:
    """One line per segment; a segment with a speaker starts with "S1: " (or its name)."""
    lines = []
    for seg in doc.segments:
        if seg.text.strip():
            who = _who(doc, seg.speaker)
            lines.append(f"{who}: {_one_line(seg.text)}\n" if who else f"{_one_line(seg.text)}\n")
    return "".join(lines)


def _srt_label(doc: TranscriptDoc) -> Callable[[str | None], str]:
    """The prefix of each SRT cue ("S1:" or the name): SRT has no markup for a speaker."""
    return lambda label: f"{_who(doc, label)}:" if label is not None else ""


def render_srt(doc: TranscriptDoc, rules: CueRules | None = None) -> str:
    cues = []
    for n, cue in enumerate(build_cues(doc, rules or CueRules(), _srt_label(doc)), start=1):
        # A blank line ends a cue and "-->" starts timing: neither may appear in text.
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        cues.append(f"{n}\n{timestamp(cue.start, ',')} --> {timestamp(cue.end, ',')}\n{text}\n")
    return "\n".join(cues)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(doc: TranscriptDoc, rules: CueRules | None = None) -> str:
    """WebVTT; a speaker's cue opens with a voice tag (`<v S1>`), which players style
    and screen readers announce, and which leaves the lines' width to the text."""
    cues = ["WEBVTT\n"]
    for cue in build_cues(doc, rules or CueRules()):
        text = "\n".join(_vtt_escape(line) for line in cue.lines)
        if cue.speaker is not None:
            text = f"<v {_vtt_escape(_who(doc, cue.speaker))}>{text}"
        cues.append(f"{timestamp(cue.start, '.')} --> {timestamp(cue.end, '.')}\n{text}\n")
    return "\n".join(cues)


def render_tsv(doc: TranscriptDoc) -> str:
    """Whisper's own TSV: integer milliseconds, a header line, tabs kept out of text; with
    speakers a fourth column, last, so readers of the three columns still work."""
    with_speakers = any(seg.speaker is not None for seg in doc.segments)
    rows = ["start\tend\ttext\tspeaker" if with_speakers else "start\tend\ttext"]
    for seg in doc.segments:
        if seg.text.strip():
            text = _one_line(seg.text.replace("\t", " "))
            row = f"{round(seg.start * 1000)}\t{round(seg.end * 1000)}\t{text}"
            if with_speakers:
                row += "\t" + _who(doc, seg.speaker).replace("\t", " ")
            rows.append(row)
    return "\n".join(rows) + "\n"


def render_json(doc: TranscriptDoc) -> str:
    """The whole doc; with speakers, their list with names and times after the segments
    (segments keep the labels, which a rename never changes)."""
    body = {"text": doc.text, **doc.model_dump(mode="json")}
    speakers = doc.speakers
    if speakers:
        body["speakers"] = [s.model_dump(mode="json") for s in speakers]
    return json.dumps(body, ensure_ascii=False)


def diarized(doc: TranscriptDoc, task: str = "transcribe") -> dict[str, object]:
    """OpenAI's `diarized_json` (gpt-4o-transcribe-diarize): segments of one speaker each,
    ids "seg_N", the speaker by name where the user gave one (as OpenAI shows its
    known_speaker_names); a transcript without speakers is one speaker, "S1"."""
    return {
        "task": task,
        "duration": doc.duration,
        "text": doc.text,
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{n}",
                "start": seg.start,
                "end": seg.end,
                "text": seg.text,
                "speaker": _who(doc, seg.speaker or "S1"),
            }
            for n, seg in enumerate(s for s in doc.segments if s.text.strip())
        ],
        "usage": {"type": "duration", "seconds": round(doc.duration, 3)},
    }


def render_diarized_json(doc: TranscriptDoc) -> str:
    return json.dumps(diarized(doc), ensure_ascii=False)


RENDERERS: dict[Format, Callable[[TranscriptDoc], str]] = {
    Format.json: render_json,
    Format.txt: render_txt,
    Format.tsv: render_tsv,
    Format.diarized_json: render_diarized_json,
}


def render(doc: TranscriptDoc, fmt: Format, rules: CueRules | None = None) -> str:
    """The doc in `fmt`; SRT and VTT cues are cut by `rules` (default: broadcast rules)."""
    if fmt == Format.srt:
        return render_srt(doc, rules)
    if fmt == Format.vtt:
        return render_vtt(doc, rules)
    return RENDERERS[fmt](doc)
