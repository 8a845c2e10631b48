"""Check parsed SRT or VTT against every subtitle rule (unit and e2e tests share it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d{3}) --> (\d\d):(\d\d):(\d\d)[,.](\d{3})")
SLACK = 0.0015  # timestamps are rounded to the millisecond


@dataclass(frozen=True)
class ParsedCue:
    start: float
    end: float
    lines: list[str]


def parse(body: str) -> list[ParsedCue]:
    """The cues of an SRT or WebVTT body (WebVTT's entities decoded)."""
    cues = []
    for block in body.strip().split("\n\n"):
        lines = block.split("\n")
        at = next((i for i, line in enumerate(lines) if _TIME.fullmatch(line)), None)
        if at is None:
            assert block.strip() == "WEBVTT", block
            continue
        m = _TIME.fullmatch(lines[at])
        assert m is not None
        n = [int(g) for g in m.groups()]
        start = n[0] * 3600 + n[1] * 60 + n[2] + n[3] / 1000
        end = n[4] * 3600 + n[5] * 60 + n[6] + n[7] / 1000
        text = [
            line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            for line in lines[at + 1 :]
        ]
        cues.append(ParsedCue(start, end, text))
    return cues


def assert_rules(
    cues: list[ParsedCue],
    words: list[str],
    width: int = 42,
    count: int = 2,
    longest: float = 7.0,
    shortest: float = 1.0,
    gap: float = 0.08,
) -> None:
    """One speaker's cues meet every rule, and carry `words` in order, none lost."""
    assert cues, "no cues"
    for i, cue in enumerate(cues):
        assert 1 <= len(cue.lines) <= count, cue
        for line in cue.lines:
            assert line and line == line.strip() and "  " not in line, cue
            assert len(line) <= width or " " not in line, (width, cue)
        assert cue.start < cue.end <= cue.start + longest + SLACK, cue
        nxt = cues[i + 1] if i + 1 < len(cues) else None
        if nxt is not None:
            assert nxt.start - cue.end >= gap - SLACK, (cue, nxt)
        room = nxt.start - gap if nxt is not None else float("inf")
        assert cue.end - cue.start >= shortest - SLACK or cue.end >= room - SLACK, (cue, nxt)
    shown = [w for cue in cues for line in cue.lines for w in line.split()]
    assert shown == words


def words_of(doc: dict[str, object]) -> list[str]:
    """The words of a JSON transcript as the cues show them (glued pieces joined)."""
    segments = doc["segments"]
    assert isinstance(segments, list)
    text = " ".join("".join(w["word"] for w in s["words"]) or s["text"] for s in segments)
    return text.split()
