"""Subtitle cues that follow broadcast rules, built from word times.

Whisper's segments make poor subtitles: they run for up to 30 s and for lines of any
length. A cue here holds at most `max_line_count` lines of `max_line_width`
characters and lasts at most `max_cue_seconds`; it stays up at least
`min_cue_seconds` where the next cue leaves room, and cues of one speaker keep
`min_gap_seconds` between them, so a player shows them as separate. Lines and cues
break at a sentence end first, then at clause punctuation, then where the lines come
out most even; never inside a word. A word wider than a line has a line of its own.
A new speaker starts a new cue, and two speakers' cues may overlap in time; so does a
pause of `PAUSE_SECONDS` or more, which would otherwise leave a cue up over silence.
Where a format prints the speaker in the text (SRT's "S1: "), the label takes its room
on the cue's first line, glued to the first word: never alone on a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from shared.transcript import Segment, TranscriptDoc

# Written as escapes: full-width and typographic marks look like ASCII ones.
_SENTENCE_END = (".", "?", "!", "\u2026", "\u3002", "\uff1f", "\uff01")
_CLAUSE_END = (",", ";", ":", "\u2014", "\u2013", "\u3001", "\uff0c")
_CLOSERS = "\"')]\u00bb\u201d\u2019"
MIN_CUE_SECONDS = 1.0  # shortest a cue is shown, where the next cue leaves room
MIN_GAP_SECONDS = 0.08  # two frames at 25 fps between one speaker's cues
PAUSE_SECONDS = 2.0  # silence between two words that ends a cue
_SENTENCE, _CLAUSE, _PLAIN = 0, 1, 3  # the cost of a break after such a word


class CueRules(BaseModel):
    """How subtitle cues are cut; the defaults are common broadcast practice."""

    max_line_width: int = Field(
        default=42, ge=10, le=200, description="Characters per subtitle line (SRT, VTT)"
    )
    max_line_count: int = Field(
        default=2, ge=1, le=10, description="Lines per subtitle cue (SRT, VTT)"
    )
    max_cue_seconds: float = Field(
        default=7.0,
        ge=1,
        le=60,
        allow_inf_nan=False,
        description="Longest a subtitle cue stays up, in seconds",
    )


@dataclass(frozen=True)
class Token:
    """One unbreakable piece of text (a word and the punctuation stuck to it)."""

    start: float
    end: float
    text: str
    speaker: str | None = None

    @property
    def break_cost(self) -> int:
        """How good a place the end of this word is to break a line or a cue."""
        bare = self.text.rstrip(_CLOSERS)
        if bare.endswith(_SENTENCE_END):
            return _SENTENCE
        if bare.endswith(_CLAUSE_END):
            return _CLAUSE
        return _PLAIN


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None


def tokens(doc: TranscriptDoc) -> list[Token]:
    """The doc's words in order; segments without word times share theirs out by length."""
    out: list[Token] = []
    for segment in doc.segments:
        out.extend(_segment_tokens(segment))
    return out


def _segment_tokens(segment: Segment) -> Iterator[Token]:
    if not segment.words:
        yield from _spread(segment)
        return
    pending: Token | None = None
    for word in segment.words:
        text = " ".join(word.word.split())
        if not text:
            continue
        speaker = word.speaker or segment.speaker
        glued = pending is not None and not word.word[:1].isspace() and speaker == pending.speaker
        if pending is not None and glued:
            pending = replace(pending, end=max(pending.end, word.end), text=pending.text + text)
            continue
        if pending is not None:
            yield pending
        pending = Token(word.start, max(word.end, word.start), text, speaker)
    if pending is not None:
        yield pending


def _spread(segment: Segment) -> Iterator[Token]:
    """Times for the words of a segment that has none: in proportion to their length."""
    words = segment.text.split()
    total = sum(len(w) for w in words) or 1
    span = max(segment.end - segment.start, 0.0)
    done = 0
    for word in words:
        start = segment.start + span * done / total
        done += len(word)
        yield Token(start, segment.start + span * done / total, word, segment.speaker)


Label = Callable[[str | None], str]


def build_cues(doc: TranscriptDoc, rules: CueRules, label: Label | None = None) -> list[Cue]:
    """The doc's subtitle cues, in order of start, each meeting every rule; `label` gives
    the text printed before a speaker's words in each of its cues ("" for none)."""
    cues: list[Cue] = []
    for turn in _turns(tokens(doc)):
        lead = _lead(turn[0], label)
        cues.extend(_layout(group, rules, lead) for group in _groups(turn, rules, lead))
    cues.sort(key=lambda c: c.start)
    return _timed(cues, rules)


def _lead(first: Token, label: Label | None) -> str | None:
    text = " ".join(label(first.speaker).split()) if label is not None else ""
    return text or None


def _shown(words: list[Token], lead: str | None) -> list[Token]:
    """The words as the cue prints them: the label, if any, one piece with the first."""
    if lead is None:
        return words
    return [replace(words[0], text=f"{lead} {words[0].text}"), *words[1:]]


def _turns(words: list[Token]) -> Iterator[list[Token]]:
    """Runs of words by one speaker without a long pause: either starts a new cue."""
    run: list[Token] = []
    for word in words:
        if run and (word.speaker != run[-1].speaker or word.start - run[-1].end >= PAUSE_SECONDS):
            yield run
            run = []
        run.append(word)
    if run:
        yield run


def _groups(turn: list[Token], rules: CueRules, lead: str | None) -> Iterator[list[Token]]:
    """One speaker's words cut into cues; an overflowing cue is cut back to its last
    sentence (or clause) end when that leaves it at least half full."""
    current: list[Token] = []
    for word in turn:
        if not current or _fits([*current, word], rules, lead):
            current.append(word)
            continue
        cut = _cue_break(current)
        yield current[:cut]
        current = current[cut:]
        if current and not _fits([*current, word], rules, lead):
            yield current
            current = []
        current.append(word)
    if current:
        yield current


def _cue_break(words: list[Token]) -> int:
    """Where to end a full cue: after its last sentence end, else its last clause end,
    in its second half; else after all of it."""
    for cost in (_SENTENCE, _CLAUSE):
        for i in range(len(words) - 1, (len(words) - 1) // 2, -1):
            if i < len(words) - 1 and words[i].break_cost == cost:
                return i + 1
    return len(words)


def _fits(words: list[Token], rules: CueRules, lead: str | None) -> bool:
    if words[-1].end - words[0].start > rules.max_cue_seconds:
        return False
    return _lines_needed(_shown(words, lead), rules.max_line_width) <= rules.max_line_count


def _lines_needed(words: list[Token], width: int) -> int:
    """The fewest lines the words fill (greedy filling is optimal for the count)."""
    lines, used = 1, -1
    for word in words:
        if used >= 0 and used + 1 + len(word.text) > width:
            lines, used = lines + 1, -1
        used = len(word.text) if used < 0 else used + 1 + len(word.text)
    return lines


def _layout(words: list[Token], rules: CueRules, lead: str | None) -> Cue:
    """A cue's words (after the label, if any) in as few lines as fit, broken where the
    cost is least."""
    width = rules.max_line_width
    shown = _shown(words, lead)
    count = _lines_needed(shown, width)
    breaks = _best_breaks(shown, width, count)
    lines = tuple(
        " ".join(w.text for w in shown[a:b])
        for a, b in zip((0, *breaks), (*breaks, len(shown)), strict=True)
    )
    return Cue(words[0].start, words[-1].end, lines, words[0].speaker)


def _best_breaks(words: list[Token], width: int, count: int) -> tuple[int, ...]:
    """Break points for `count` lines of at most `width` (a lone word may be wider),
    least cost: punctuation first, then lines of even length."""
    n = len(words)
    sums = [0]
    for word in words:
        sums.append(sums[-1] + len(word.text))

    def line_len(a: int, b: int) -> int:
        return sums[b] - sums[a] + (b - a - 1)

    target = line_len(0, n) / count
    best: dict[tuple[int, int], tuple[float, tuple[int, ...]]] = {(0, 0): (0.0, ())}
    for lines in range(1, count + 1):
        for end in range(1, n + 1):
            options = []
            for start in range(end - 1, -1, -1):
                length = line_len(start, end)
                if length > width and end - start > 1:
                    break
                prev = best.get((lines - 1, start))
                if prev is None:
                    continue
                cost = prev[0] + abs(length - target) / width
                if end < n:
                    cost += words[end - 1].break_cost
                options.append((cost, (*prev[1], end)))
            if options:
                best[(lines, end)] = min(options)
    return best[(count, n)][1][:-1]


def _timed(cues: list[Cue], rules: CueRules) -> list[Cue]:
    """Each speaker's cues kept apart by the minimum gap and shown at least the minimum
    time where the gap before their next cue allows; never longer than the maximum."""
    out = list(cues)
    last_of: dict[str | None, int] = {}
    for i in reversed(range(len(out))):
        nxt = last_of.get(out[i].speaker)
        last_of[out[i].speaker] = i
        out[i] = _fit_before(out[i], out[nxt] if nxt is not None else None, rules)
    by_speaker: dict[str | None, int] = {}
    for i, cue in enumerate(out):  # a cue too short for any gap pushes its successor
        prev = by_speaker.get(cue.speaker)
        by_speaker[cue.speaker] = i
        if prev is not None and cue.start < out[prev].end + MIN_GAP_SECONDS:
            start = out[prev].end + MIN_GAP_SECONDS
            out[i] = replace(cue, start=start, end=max(cue.end, start + 0.001))
    return out


def _fit_before(cue: Cue, nxt: Cue | None, rules: CueRules) -> Cue:
    end = max(cue.end, cue.start + MIN_CUE_SECONDS)
    end = min(end, cue.start + rules.max_cue_seconds)
    if nxt is not None:
        end = min(end, nxt.start - MIN_GAP_SECONDS)
    return replace(cue, end=max(end, cue.start + 0.001))
