"""The cue builder on the cases that break naive subtitles."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from shared.speakers import name_speakers
from shared.subtitles import Cue, CueRules, build_cues
from shared.transcript import Segment, TranscriptDoc, Word, render_srt, render_vtt
from tests.subtitle_rules import ParsedCue, assert_rules, assert_speaker_rules, parse


def words_doc(text: str, step: float = 0.3, speaker: str | None = None) -> TranscriptDoc:
    """A segment whose words follow each other every `step` seconds."""
    words = [
        Word(start=i * step, end=i * step + step * 0.9, word=f" {w}", speaker=speaker)
        for i, w in enumerate(text.split())
    ]
    segment = Segment(start=0, end=words[-1].end, text=text, words=words)
    return TranscriptDoc(segments=[segment])


def as_parsed(cues: list[Cue]) -> list[ParsedCue]:
    return [ParsedCue(c.start, c.end, list(c.lines)) for c in cues]


LONG = (
    "We choose to go to the Moon in this decade and do the other things, not because "
    "they are easy, but because they are hard. Because that goal will serve to organize "
    "and measure the best of our energies and skills. Because that challenge is one that "
    "we are willing to accept, one we are unwilling to postpone, and one which we intend "
    "to win, and the others, too."
)


@pytest.mark.parametrize(
    "rules",
    [
        CueRules(),
        CueRules(max_line_width=20, max_line_count=1, max_cue_seconds=3),
        CueRules(max_line_width=10, max_line_count=3, max_cue_seconds=1),
    ],
)
def test_a_long_speech_meets_every_rule(rules: CueRules) -> None:
    cues = build_cues(words_doc(LONG), rules)
    assert len(cues) > 1
    assert_rules(
        as_parsed(cues),
        LONG.split(),
        rules.max_line_width,
        rules.max_line_count,
        rules.max_cue_seconds,
    )


def test_lines_break_after_a_sentence_before_a_comma_before_evenness() -> None:
    cues = build_cues(words_doc("Yes, we can go there. Then we will stay a while."), CueRules())
    assert cues[0].lines == ("Yes, we can go there.", "Then we will stay a while.")
    cues = build_cues(
        words_doc("Over the hills, and far away we ride tonight"), CueRules(max_line_width=30)
    )
    assert cues[0].lines == ("Over the hills,", "and far away we ride tonight")


def test_a_full_cue_ends_at_its_last_sentence_end() -> None:
    text = "The first sentence is here. And the second one runs on well past any line"
    cues = build_cues(words_doc(text), CueRules(max_line_width=30, max_line_count=1))
    assert cues[0].lines == ("The first sentence is here.",)


def test_a_word_wider_than_a_line_has_a_line_of_its_own() -> None:
    huge = "Pneumonoultramicroscopicsilicovolcanoconiosis"
    cues = build_cues(words_doc(f"a {huge} b"), CueRules(max_line_width=10, max_line_count=3))
    assert [line for c in cues for line in c.lines] == ["a", huge, "b"]
    only = build_cues(words_doc(huge), CueRules(max_line_width=10))
    assert only[0].lines == (huge,)


def test_a_segment_without_words_shares_its_time_out() -> None:
    text = " ".join(["word"] * 60)
    doc = TranscriptDoc(segments=[Segment(start=10, end=40, text=text)])
    cues = build_cues(doc, CueRules())
    assert cues[0].start == 10 and cues[-1].end == pytest.approx(40)
    assert_rules(as_parsed(cues), text.split())


def test_no_words_no_cues() -> None:
    doc = TranscriptDoc(segments=[Segment(start=0, end=1, text="  ")])
    assert build_cues(doc, CueRules()) == []
    assert render_srt(doc) == "" and render_vtt(doc) == "WEBVTT\n"


def test_pieces_without_a_space_stay_one_word() -> None:
    words = [
        Word(start=0, end=0.5, word=" 1"),
        Word(start=0.5, end=1, word=",000"),
        Word(start=1, end=1.5, word=" people"),
    ]
    doc = TranscriptDoc(segments=[Segment(start=0, end=1.5, text=" 1,000 people", words=words)])
    cues = build_cues(doc, CueRules(max_line_width=10, max_line_count=1))
    assert [c.lines for c in cues] == [("1,000",), ("people",)]


def test_a_short_cue_is_extended_into_the_gap_but_keeps_the_gap() -> None:
    words = [Word(start=0, end=0.2, word=" Hi."), Word(start=0.6, end=3, word=" Hello-o-o.")]
    doc = TranscriptDoc(segments=[Segment(start=0, end=3, text="", words=words)])
    cues = build_cues(doc, CueRules(max_line_width=10, max_line_count=1))
    assert cues[0].end == pytest.approx(0.6 - 0.08)
    alone = build_cues(words_doc("Hi."), CueRules())
    assert alone[0].end == pytest.approx(1.0)


def test_adjacent_words_are_parted_by_the_minimum_gap() -> None:
    cues = build_cues(words_doc(LONG, step=0.25), CueRules(max_line_count=1))
    assert all(b.start - a.end >= 0.08 - 1e-9 for a, b in itertools.pairwise(cues))


def test_a_new_speaker_starts_a_new_cue_and_speakers_may_overlap() -> None:
    a = [
        Word(start=0, end=2, word=" Well", speaker="A"),
        Word(start=2, end=4, word=" then", speaker="A"),
    ]
    b = [Word(start=1, end=3, word=" No", speaker="B")]
    doc = TranscriptDoc(
        segments=[
            Segment(start=0, end=4, text="", words=a, speaker="A"),
            Segment(start=1, end=3, text="", words=b, speaker="B"),
            Segment(start=4.05, end=5, text=" again", speaker="A"),
        ]
    )
    cues = build_cues(doc, CueRules())
    assert [(c.speaker, c.lines) for c in cues] == [
        ("A", ("Well then",)),
        ("B", ("No",)),
        ("A", ("again",)),
    ]
    assert cues[1].start < cues[0].end  # two voices at once
    assert cues[2].start - cues[0].end >= 0.08 - 1e-9  # one voice keeps its gap


def test_a_word_longer_than_a_cue_is_cut_to_the_longest_cue() -> None:
    doc = TranscriptDoc(segments=[Segment(start=0, end=20, text="Ooooh")])
    assert build_cues(doc, CueRules())[0].end == 7


def test_srt_and_vtt_carry_the_lines() -> None:
    doc = words_doc("Yes, we can go there. Then we will stay a <while> & more.")
    srt, vtt = render_srt(doc), render_vtt(doc)
    assert srt.splitlines()[2:4] == ["Yes, we can go there.", "Then we will stay a <while> & more."]
    assert "Then we will stay a &lt;while&gt; &amp; more." in vtt
    assert_rules(parse(srt), doc.segments[0].text.split())
    assert_rules(parse(vtt), doc.segments[0].text.split())


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_line_width", 9),
        ("max_line_width", 201),
        ("max_line_count", 0),
        ("max_line_count", 11),
        ("max_cue_seconds", 0.5),
        ("max_cue_seconds", 61),
    ],
)
def test_rules_out_of_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        CueRules.model_validate({field: value})


def test_a_long_pause_inside_a_segment_starts_a_new_cue() -> None:
    words = [
        Word(start=0, end=0.4, word=" Wait"),
        Word(start=0.5, end=0.9, word=" here"),
        Word(start=2.9, end=3.3, word=" Now"),  # 2.0 s after "here"
        Word(start=3.4, end=3.8, word=" go"),
        Word(start=5.7, end=6.0, word=" on"),  # 1.9 s: no new cue
    ]
    doc = TranscriptDoc(segments=[Segment(start=0, end=6, text="", words=words)])
    cues = build_cues(doc, CueRules())
    assert [c.lines for c in cues] == [("Wait here",), ("Now go on",)]
    assert cues[0].end <= 2.9 - 0.08 + 1e-9  # not shown over the silence into the next


def two_voices(n: int) -> TranscriptDoc:
    """Two speakers taking turns with sentences of LONG, overlapping a little."""
    pieces = LONG.split(". ")
    segments, t = [], 0.0
    for i in range(n):
        speaker = f"S{i % 2 + 1}"
        text = pieces[i % len(pieces)]
        words = [
            Word(start=t + k * 0.3, end=t + k * 0.3 + 0.27, word=f" {w}", speaker=speaker)
            for k, w in enumerate(text.split())
        ]
        segments.append(
            Segment(start=t, end=words[-1].end, text=text, words=words, speaker=speaker)
        )
        t = words[-1].end - 0.4  # the next voice starts before this one ends
    return TranscriptDoc(segments=segments)


def speaker_words(
    doc: TranscriptDoc, names: dict[str, str] | None = None
) -> dict[str | None, list[str]]:
    out: dict[str | None, list[str]] = {}
    for s in doc.segments:
        key = (names or {}).get(s.speaker or "", s.speaker)
        out.setdefault(key, []).extend(s.text.split())
    return out


@pytest.mark.parametrize(
    "rules", [CueRules(), CueRules(max_line_width=16, max_line_count=1, max_cue_seconds=2)]
)
def test_speakers_cues_in_srt_and_vtt_meet_every_rule(rules: CueRules) -> None:
    doc = name_speakers(two_voices(6), {"S2": "Dr. Who"})
    shown = speaker_words(doc, {"S2": "Dr. Who"})
    limits = {
        "width": rules.max_line_width,
        "count": rules.max_line_count,
        "longest": rules.max_cue_seconds,
    }
    srt = parse(render_srt(doc, rules), speakers=("S1", "Dr. Who"))
    vtt = parse(render_vtt(doc, rules))
    assert_speaker_rules(srt, shown, **limits)
    assert_speaker_rules(vtt, shown, **limits)
    assert all(c.lines[0].startswith(f"{c.speaker}: ") for c in srt)
    assert any(a.end > b.start for a, b in itertools.pairwise(vtt))  # voices overlap


def test_the_srt_label_takes_room_on_the_line_and_is_never_alone_on_it() -> None:
    doc = words_doc("abcdefgh ijklmnop", speaker="S1")
    (cue,) = build_cues(doc, CueRules(max_line_width=16), lambda s: f"{s}:")
    assert cue.lines == ("S1: abcdefgh", "ijklmnop")  # 21 characters would not fit one line
    huge = words_doc("Pneumonoultramicroscopicsilicovolcanoconiosis", speaker="S1")
    (cue,) = build_cues(huge, CueRules(max_line_width=10), lambda s: f"{s}:")
    assert cue.lines == ("S1: Pneumonoultramicroscopicsilicovolcanoconiosis",)
    assert build_cues(words_doc("plain words"), CueRules(), lambda s: "")[0].lines == (
        "plain words",
    )
