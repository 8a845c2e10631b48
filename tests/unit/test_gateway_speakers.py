"""The gateway's own speaker logic: rename bodies, the merge patch, names in downloads,
and how often the heartbeat keys are read (a stand-in Redis counts the SCANs; the real
one is in tests/e2e/test_speakers_api.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from arq import ArqRedis

from services.gateway.errors import headers_of, status_of
from services.gateway.problems import InvalidField, Unavailable
from services.gateway.speakers import (
    NO_WORKER,
    SpeakersWorkers,
    labels_of,
    merged_names,
    parse_names,
)
from shared.models import Transcript
from shared.transcript import Segment, TranscriptDoc, Word


def test_a_rename_takes_labels_and_trimmed_printable_names() -> None:
    body = {"speaker_names": {"S1": " Ana ", "S2": "Bo Ek", "S12": None}}
    assert parse_names(body, 20) == {"S1": "Ana", "S2": "Bo Ek", "S12": None}
    assert parse_names({"speaker_names": None}, 20) is None
    assert parse_names({"speaker_names": {"S1": "é" * 64}}, 20) == {"S1": "é" * 64}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([], "the only field a job takes"),
        ({"speakers": "auto"}, "the only field a job takes"),
        ({"speaker_names": {"S1": "A"}, "status": "done"}, "the only field"),
        ({"speaker_names": ["Ana"]}, "an object of label -> name"),
        ({"speaker_names": {"s1": "Ana"}}, "'s1' is not a speaker label: labels are S1 to S20"),
        ({"speaker_names": {"S0": "Ana"}}, "'S0' is not a speaker label"),
        ({"speaker_names": {"S21": "Ana"}}, "'S21' is not a speaker label"),
        ({"speaker_names": {"SPEAKER_00": "Ana"}}, "is not a speaker label"),
        ({"speaker_names": {"S1": ""}}, "S1: a name is 1 to 64 printable"),
        ({"speaker_names": {"S1": "   "}}, "a name is 1 to 64 printable"),
        ({"speaker_names": {"S1": "x" * 65}}, "a name is 1 to 64"),
        ({"speaker_names": {"S1": "Ana\nBo"}}, "no line breaks"),
        ({"speaker_names": {"S1": "A\x00"}}, "control characters"),
        ({"speaker_names": {"S1": "A\u202eB"}}, "printable"),
        ({"speaker_names": {"S1": 7}}, "S1: a name is text"),
        ({"speaker_names": {f"S{i}": "x" for i in range(1, 23)}}, "at most 20 names"),
    ],
)
def test_a_rename_that_cannot_be_is_a_422_saying_why(body: Any, says: str) -> None:
    with pytest.raises(InvalidField, match=says) as refused:
        parse_names(body, 20)
    assert status_of(refused.value) == 422
    assert refused.value.param == "speaker_names"


def test_names_merge_as_a_json_merge_patch() -> None:
    stored = {"S1": "Ana", "S2": "Bo"}
    assert merged_names(stored, {"S2": None, "S10": "Cy", "S3": "Di"}) == {
        "S1": "Ana",
        "S3": "Di",
        "S10": "Cy",
    }
    assert list(merged_names(None, {"S10": "x", "S2": "y"}) or {}) == ["S2", "S10"]
    assert merged_names(stored, {"S1": None, "S2": None}) is None
    assert merged_names(stored, None) is None
    assert merged_names(stored, {}) == stored


def _doc() -> TranscriptDoc:
    words = [Word(start=0, end=1, word=" Hi", speaker="S1")]
    return TranscriptDoc(
        segments=[
            Segment(id=0, start=0, end=1, text=" Hi", words=words, speaker="S1"),
            Segment(id=1, start=1, end=2, text=" Yo", speaker="S2"),
            Segment(id=2, start=2, end=3, text=" Ok"),
        ]
    )


def test_the_labels_of_a_stored_transcript() -> None:
    stored = Transcript(
        job_id="x" * 32,
        segments=[s.model_dump() for s in _doc().segments] + [{"text": "odd"}],
    )
    assert labels_of(stored) == {"S1", "S2"}


class _Redis:
    """Answers SCAN from a fixed key list, one page at a time, counting the calls."""

    def __init__(self, keys: list[str], fail: bool = False) -> None:
        self.keys = keys
        self.fail = fail
        self.scans = 0

    async def scan(self, cursor: int, match: str, count: int) -> tuple[int, list[bytes]]:
        self.scans += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("Redis is down")
        prefix = match.rstrip("*")
        page = self.keys[cursor : cursor + 2]
        after = cursor + 2 if cursor + 2 < len(self.keys) else 0
        return after, [k.encode() for k in page if k.startswith(prefix)]


async def test_the_heartbeat_keys_are_read_once_per_cache_window_for_any_crowd() -> None:
    redis = _Redis(["arq:queue", "vtx:workers:transcriber:a", "x", "vtx:workers:speakers:b"])
    workers = SpeakersWorkers(cache_s=60)
    answers = await asyncio.gather(*(workers.alive(cast(ArqRedis, redis)) for _ in range(50)))
    assert all(answers)
    assert redis.scans == 2  # two pages, read once for all fifty requests


async def test_no_speakers_worker_is_a_503_that_says_what_to_install() -> None:
    redis = _Redis(["vtx:workers:transcriber:a", "vtx:workers:splitter:b", "arq:queue"])
    workers = SpeakersWorkers(cache_s=0)
    with pytest.raises(Unavailable) as refused:
        await workers.require(cast(ArqRedis, redis))
    assert refused.value.message == NO_WORKER
    assert "vtx[speakers]" in NO_WORKER and "speakers service" in NO_WORKER
    assert status_of(refused.value) == 503
    assert headers_of(refused.value) == {"X-Should-Retry": "false"}
    assert redis.scans == 2  # the whole keyspace, to its last page


async def test_a_queue_that_does_not_answer_is_a_503_to_retry() -> None:
    workers = SpeakersWorkers(cache_s=0)
    with pytest.raises(Unavailable, match="does not answer") as refused:
        await workers.require(cast(ArqRedis, _Redis([], fail=True)))
    assert headers_of(refused.value) == {"Retry-After": "5"}
