"""Speakers end to end on `vtx up`, as a user asks for them: a conversation of four real
voices in an MP4 with video goes through split, transcription and the speakers service,
and every download says who spoke."""

from __future__ import annotations

import httpx
import pytest

from bench.conversations import Conversation, RefTurn, assemble
from bench.speaker_score import score_words
from tests.conftest import SHARED_MEDIA
from tests.e2e.conftest import Suite
from tests.e2e.test_speakers_api import SPEAKERS_RUN, post_job, speakers_worker_alive
from tests.subtitle_rules import assert_speaker_rules, parse

pytestmark = [
    pytest.mark.skipif(not SPEAKERS_RUN, reason="no speakers service (or its extra) to run"),
    pytest.mark.skipif(not SHARED_MEDIA.exists(), reason="../shared/media is absent"),
]


@pytest.fixture(scope="module")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    return assemble(tmp_path_factory.mktemp("conversations"))["four_voices_video"]


def test_four_voices_in_a_video_come_back_with_their_speakers(
    suite: Suite, conversation: Conversation
) -> None:
    speakers_worker_alive(suite)
    response = post_job(suite, conversation.path, speakers="auto")
    assert response.status_code == 202, response.text
    job = suite.wait_for(response.json()["id"], timeout=600)
    assert job["status"] == "completed", job
    assert job["speaker_route"] == "voices"
    url = f"{suite.gateway}/v1/jobs/{job['id']}/transcript"
    doc = httpx.get(url).json()

    spoken = [w for s in doc["segments"] for w in s["words"]]
    assert spoken and all(w["speaker"] for w in spoken)
    found = [RefTurn(w["start"], w["end"], w["speaker"]) for w in spoken]
    score = score_words([(w["start"], w["end"]) for w in spoken], conversation.turns, found)
    assert score.right_count, (score.found_speakers, conversation.voices)
    assert score.accuracy >= 0.9, score
    for segment in doc["segments"]:  # a speaker change starts a new segment
        assert {w["speaker"] for w in segment["words"]} <= {segment["speaker"]}
    listed = {s["id"]: s["seconds"] for s in doc["speakers"]}
    assert set(listed) == {w["speaker"] for w in spoken}
    assert all(seconds > 0 for seconds in listed.values())

    by_speaker: dict[str | None, list[str]] = {
        label: [w for s in doc["segments"] if s["speaker"] == label for w in s["text"].split()]
        for label in listed
    }
    vtt = parse(httpx.get(url, params={"format": "vtt"}).text)
    srt = parse(httpx.get(url, params={"format": "srt"}).text, tuple(listed))
    for cues in (vtt, srt):
        assert_speaker_rules(cues, by_speaker)
    diarized = httpx.get(url, params={"format": "diarized_json"}).json()
    assert {s["speaker"] for s in diarized["segments"]} == set(listed)
    assert all(s["type"] == "transcript.text.segment" for s in diarized["segments"])
