"""Transcript types, the merge of per-chunk results, and the output formats."""

from __future__ import annotations

import json
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


class TranscriptDoc(BaseModel):
    language: str | None = None
    language_probability: float | None = None
    duration: float = 0.0
    segments: list[Segment] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


class ChunkResult(BaseModel):
    """One chunk's segments, already offset to the whole file, and the span it covers."""

    start: float
    end: float
    segments: list[Segment]


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
                Segment(id=len(merged), start=start, end=end, text=segment.text, words=words)
            )
    return merged


class Format(StrEnum):
    json = "json"
    txt = "txt"
    srt = "srt"
    vtt = "vtt"
    tsv = "tsv"


MEDIA_TYPES: dict[Format, str] = {
    Format.json: "application/json",
    Format.txt: "text/plain; charset=utf-8",
    Format.srt: "application/x-subrip; charset=utf-8",
    Format.vtt: "text/vtt; charset=utf-8",
    Format.tsv: "text/tab-separated-values; charset=utf-8",
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


def render_txt(doc: TranscriptDoc) -> str:
    return "".join(f"{_one_line(s.text)}\n" for s in doc.segments if s.text.strip())


def render_srt(doc: TranscriptDoc, rules: CueRules | None = None) -> str:
    cues = []
    for n, cue in enumerate(build_cues(doc, rules or CueRules()), start=1):
        # A blank line ends a cue and "-->" starts timing: neither may appear in text.
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        cues.append(f"{n}\n{timestamp(cue.start, ',')} --> {timestamp(cue.end, ',')}\n{text}\n")
    return "\n".join(cues)


def render_vtt(doc: TranscriptDoc, rules: CueRules | None = None) -> str:
    cues = ["WEBVTT\n"]
    for cue in build_cues(doc, rules or CueRules()):
        text = "\n".join(
            line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            for line in cue.lines
        )
        cues.append(f"{timestamp(cue.start, '.')} --> {timestamp(cue.end, '.')}\n{text}\n")
    return "\n".join(cues)


def render_tsv(doc: TranscriptDoc) -> str:
    """Whisper's own TSV: integer milliseconds, a header line, tabs kept out of text."""
    rows = ["start\tend\ttext"]
    for seg in doc.segments:
        if seg.text.strip():
            text = _one_line(seg.text.replace("\t", " "))
            rows.append(f"{round(seg.start * 1000)}\t{round(seg.end * 1000)}\t{text}")
    return "\n".join(rows) + "\n"


def render_json(doc: TranscriptDoc) -> str:
    body = {"text": doc.text, **doc.model_dump(mode="json")}
    return json.dumps(body, ensure_ascii=False)


RENDERERS: dict[Format, Callable[[TranscriptDoc], str]] = {
    Format.json: render_json,
    Format.txt: render_txt,
    Format.tsv: render_tsv,
}


def render(doc: TranscriptDoc, fmt: Format, rules: CueRules | None = None) -> str:
    """The doc in `fmt`; SRT and VTT cues are cut by `rules` (default: broadcast rules)."""
    if fmt == Format.srt:
        return render_srt(doc, rules)
    if fmt == Format.vtt:
        return render_vtt(doc, rules)
    return RENDERERS[fmt](doc)
