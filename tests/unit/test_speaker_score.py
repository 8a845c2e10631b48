"""The speaker score: best one-to-one label mapping, words and time, overlap, gaps."""

from __future__ import annotations

import pytest

from bench.conversations import RefTurn
from bench.speaker_score import Timeline, score_time, score_words, speaker_at

REF = [RefTurn(0.0, 4.0, "ana"), RefTurn(5.0, 9.0, "ben"), RefTurn(10.0, 12.0, "ana")]
WORDS = [(0.5, 1.0), (2.0, 2.5), (3.0, 3.5), (5.5, 6.0), (7.0, 7.5), (8.0, 8.5), (11.0, 11.5)]


def test_any_names_for_the_right_split_score_full_marks() -> None:
    found = [RefTurn(0.1, 3.9, "S2"), RefTurn(5.1, 8.8, "S1"), RefTurn(10.0, 12.0, "S2")]
    score = score_words(WORDS, REF, found)
    assert score.accuracy == 1.0
    assert score.mapping == {"S1": "ben", "S2": "ana"}
    assert score.right_count and score.counted == len(WORDS)
    assert score_time(REF, found).accuracy > 0.99


def test_one_label_for_everyone_scores_the_biggest_voice_only() -> None:
    score = score_words(WORDS, REF, [RefTurn(0.0, 12.0, "S1")])
    assert score.accuracy == pytest.approx(4 / 7, abs=1e-4)
    assert (score.found_speakers, score.reference_speakers) == (1, 2)
    assert score_time(REF, [RefTurn(0.0, 12.0, "S1")]).accuracy == pytest.approx(0.6, abs=0.01)


def test_a_label_left_over_by_the_mapping_counts_wrong() -> None:
    # ana's second turn is given a third label: one-to-one, it cannot also be ana
    found = [RefTurn(0.0, 4.0, "S1"), RefTurn(5.0, 9.0, "S2"), RefTurn(10.0, 12.0, "S3")]
    score = score_words(WORDS, REF, found)
    assert score.accuracy == pytest.approx(6 / 7, abs=1e-4)
    assert not score.right_count and "S3" not in score.mapping


def test_a_word_between_turns_goes_to_the_nearest() -> None:
    found = [RefTurn(0.0, 3.0, "S1"), RefTurn(6.0, 9.0, "S2"), RefTurn(10.5, 12.0, "S1")]
    assert speaker_at(found, 3.2) == "S1" and speaker_at(found, 5.5) == "S2"
    assert score_words(WORDS, REF, found).accuracy == 1.0
    assert speaker_at([], 1.0) is None
    assert score_words(WORDS, REF, []).accuracy == 0.0


def test_talking_at_once_either_voice_is_right_and_counts_once() -> None:
    ref = [RefTurn(0.0, 5.0, "left"), RefTurn(0.5, 2.5, "right")]
    assert Timeline(ref).covering(1.0) == ["right", "left"]
    score = score_time(ref, [RefTurn(0.0, 5.0, "S1")])
    assert score.accuracy == 1.0 and score.counted == pytest.approx(5.0, abs=0.02)
    split = [RefTurn(0.0, 0.5, "S1"), RefTurn(0.5, 2.5, "S2"), RefTurn(2.5, 5.0, "S1")]
    assert score_time(ref, split).accuracy == 1.0
