"""Check parsed SRT or VTT against every subtitle rule (unit and e2e tests share it)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d{3}) --> (\d\d):(\d\d):(\d\d)[,.](\d{3})")
_VOICE = re.compile(r"<v ([^>]+)>")
SLACK = 0.0015  # timestamps are rounded to the millisecond


@dataclass(frozen=True)
class ParsedCue:
    """A cue as a viewer sees it: `lines` as shown (SRT's "S1: " prefix included, since
    it takes room on the line; WebVTT's voice tag not), and who speaks, if anyone."""

    start: float
    end: float
    lines: list[str]
    speaker: str | None = None

    @property
    def prefix(self) -> int:
        """How many pieces of the first line are the speaker's "NAME:" prefix."""
        prefix = f"{self.speaker}:".split() if self.speaker is not None else []
        return len(prefix) if self.lines and self.lines[0].split()[: len(prefix)] == prefix else 0

    @property
    def words(self) -> list[str]:
        """The transcript's words in the cue, the speaker's prefix left out."""
        return [w for line in self.lines for w in line.split()][self.prefix :]


def parse(body: str, speakers: Collection[str] = ()) -> list[ParsedCue]:
    """The cues of an SRT or WebVTT body (WebVTT's entities decoded); the speaker from a
    WebVTT voice tag, or from an SRT cue's "NAME: " prefix where NAME is in `speakers`."""
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
        raw = lines[at + 1 :]
        speaker = None
        voice = _VOICE.match(raw[0]) if raw else None
        if voice is not None:
            speaker = _decode(voice.group(1))
            raw[0] = raw[0][voice.end() :]
        text = [_decode(line) for line in raw]
        if speaker is None:
            speaker = next(
                (
                    n
                    for n in sorted(speakers, key=len, reverse=True)
                    if text[0].startswith(f"{n}: ")
                ),
                None,
            )
        cues.append(ParsedCue(start, end, text, speaker))
    return cues


def _decode(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


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
        for n, line in enumerate(cue.lines):
            assert line and line == line.strip() and "  " not in line, cue
            # Wider than a line: only one word, with its speaker's prefix on the first line.
            alone = 1 + (cue.prefix if n == 0 else 0)
            assert len(line) <= width or len(line.split()) <= alone, (width, cue)
        assert cue.start < cue.end <= cue.start + longest + SLACK, cue
        nxt = cues[i + 1] if i + 1 < len(cues) else None
        if nxt is not None:
            assert nxt.start - cue.end >= gap - SLACK, (cue, nxt)
        room = nxt.start - gap if nxt is not None else float("inf")
        assert cue.end - cue.start >= shortest - SLACK or cue.end >= room - SLACK, (cue, nxt)
    shown = [w for cue in cues for w in cue.words]
    assert shown == words


def assert_speaker_rules(
    cues: list[ParsedCue], words: dict[str | None, list[str]], **rules: Any
) -> None:
    """Cues in order of start, each of one speaker, and each speaker's cues meeting every
    rule (`assert_rules`) with that speaker's `words`; speakers' cues may overlap."""
    starts = [c.start for c in cues]
    assert starts == sorted(starts), "cues out of order"
    by_speaker: dict[str | None, list[ParsedCue]] = defaultdict(list)
    for cue in cues:
        by_speaker[cue.speaker].append(cue)
    assert set(by_speaker) == set(words), (set(by_speaker), set(words))
    for speaker, own in by_speaker.items():
        assert_rules(own, words[speaker], **rules)


def words_of(doc: dict[str, object]) -> list[str]:
    """The words of a JSON transcript as the cues show them (glued pieces joined)."""
    segments = doc["segments"]
    assert isinstance(segments, list)
    text = " ".join("".join(w["word"] for w in s["words"]) or s["text"] for s in segments)
    return text.split()
