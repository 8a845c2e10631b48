"""A user's view of the job API: upload media, follow it, read the transcript."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import SHARED_MEDIA, make_playlist_attack, make_silent_video, recall
from tests.e2e.conftest import Suite
from tests.subtitle_rules import assert_rules, parse, words_of

TYPES = {
    "json": "application/json",
    "txt": "text/plain",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "tsv": "text/tab-separated-values",
}


def upload(suite: Suite, path: Path, name: str | None = None, **data: str) -> httpx.Response:
    with path.open("rb") as handle:
        return httpx.post(
            f"{suite.gateway}/v1/jobs",
            files={"file": (name or path.name, handle)},
            data=data,
            timeout=60,
        )


def test_an_mp4_comes_back_with_its_words_in_every_format(
    suite: Suite, speech_mp4: Path, speech_words: list[str]
) -> None:
    response = upload(suite, speech_mp4)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "queued"
    assert response.headers["location"] == created["links"]["self"]
    assert created["media"] == {
        "format": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration_seconds": created["media"]["duration_seconds"],
        "audio_codec": "aac",
        "video_codec": "h264",
        "has_video": True,
    }
    job = suite.wait_for(created["id"])
    assert job["status"] == "completed", job
    progress = job["progress"]
    assert progress["percent"] == 100 and progress["chunks_done"] == progress["chunks_total"] == 3

    bodies = {}
    for fmt, media_type in TYPES.items():
        r = httpx.get(f"{suite.gateway}{created['links']['transcript']}", params={"format": fmt})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(media_type)
        bodies[fmt] = r.text
        assert recall(speech_words, r.text) >= 0.85, (fmt, r.text)

    doc = json.loads(bodies["json"])
    assert doc["language"] == "en"
    words = [w for s in doc["segments"] for w in s["words"]]
    assert len(words) >= len(speech_words) * 0.85
    assert all(w["start"] <= w["end"] for w in words)
    assert re.search(r"^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n", bodies["srt"])
    assert bodies["vtt"].startswith("WEBVTT\n\n00:00:")
    assert bodies["tsv"].startswith("start\tend\ttext\n")
    suite.assert_healthy()


def test_two_jobs_at_once_both_complete(
    suite: Suite, speech_mp4: Path, speech_words: list[str]
) -> None:
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: upload(suite, speech_mp4), range(2)))
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 2
    for job_id in ids:
        assert suite.wait_for(job_id)["status"] == "completed"
        text = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}/transcript?format=txt").text
        assert recall(speech_words, text) >= 0.85
    suite.assert_healthy()


def test_a_text_file_named_mp4_is_refused_with_415(suite: Suite, tmp_path: Path) -> None:
    fake = tmp_path / "talk.mp4"
    fake.write_text("Not a video at all.\n" * 100)
    response = upload(suite, fake)
    assert response.status_code == 415
    assert "not audio or video" in response.json()["detail"]
    suite.assert_healthy()


def test_a_playlist_pointing_at_server_files_is_refused(
    suite: Suite, tmp_path: Path, speech_mp4: Path
) -> None:
    response = upload(suite, make_playlist_attack(tmp_path, speech_mp4), name="talk.wav")
    assert response.status_code == 415
    suite.assert_healthy()


def test_an_empty_file_gets_400(suite: Suite, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    response = upload(suite, empty)
    assert response.status_code == 400
    assert response.json()["detail"] == "The uploaded file is empty."
    suite.assert_healthy()


def test_an_upload_over_the_limit_gets_413_and_leaves_nothing_behind(
    suite: Suite, tmp_path: Path
) -> None:
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))  # VTX_MAX_UPLOAD_MB=1 in this suite
    response = upload(suite, big)
    assert response.status_code == 413
    assert "VTX_MAX_UPLOAD_MB" in response.json()["detail"]

    def chunked() -> object:  # no Content-Length: the limit holds while streaming
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n'
        for _ in range(20):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    response = httpx.post(
        f"{suite.gateway}/v1/jobs",
        content=chunked(),  # type: ignore[arg-type]
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413
    assert not list((suite.data_dir / "uploads").iterdir())
    suite.assert_healthy()


def test_a_form_without_a_file_gets_422(suite: Suite) -> None:
    response = httpx.post(f"{suite.gateway}/v1/jobs", files={"language": (None, "en")})
    assert response.status_code == 422
    assert "field named 'file'" in response.json()["detail"]


def test_a_video_without_audio_ends_failed_with_its_reason(suite: Suite, tmp_path: Path) -> None:
    response = upload(suite, make_silent_video(tmp_path / "silent.mp4"))
    assert response.status_code == 202
    job = suite.wait_for(response.json()["id"])
    assert job["status"] == "failed"
    assert "no audio track" in str(job["error"])
    transcript = httpx.get(f"{suite.gateway}/v1/jobs/{job['id']}/transcript")
    assert transcript.status_code == 409
    assert "no audio track" in transcript.json()["detail"]
    suite.assert_healthy()


def test_jobs_list_newest_first_and_delete_removes_everything(
    suite: Suite, speech_mp4: Path
) -> None:
    first = upload(suite, speech_mp4).json()["id"]
    second = upload(suite, speech_mp4).json()["id"]
    page = httpx.get(f"{suite.gateway}/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in page["items"]] == [second, first]
    assert page["total"] >= 2 and page["limit"] == 2
    suite.wait_for(first)
    media = suite.data_dir / "store" / "media" / first
    assert media.is_file()
    assert httpx.delete(f"{suite.gateway}/v1/jobs/{first}").status_code == 204
    assert httpx.get(f"{suite.gateway}/v1/jobs/{first}").status_code == 404
    assert httpx.get(f"{suite.gateway}/v1/jobs/{first}/transcript").status_code == 404
    assert not media.exists()
    assert httpx.delete(f"{suite.gateway}/v1/jobs/{first}").status_code == 404
    assert suite.wait_for(second)["status"] == "completed"  # the other job is untouched
    suite.assert_healthy()


def test_unknown_format_and_job_are_refused(suite: Suite) -> None:
    assert httpx.get(f"{suite.gateway}/v1/jobs/nope").status_code == 404
    r = httpx.get(f"{suite.gateway}/v1/jobs/nope/transcript", params={"format": "docx"})
    assert r.status_code == 422


def test_a_job_without_vad_says_so_and_comes_back_with_its_words(
    suite: Suite, speech_mp4: Path, speech_words: list[str]
) -> None:
    response = upload(suite, speech_mp4, vad="false")
    assert response.status_code == 202, response.text
    assert response.json()["vad"] is False
    job = suite.wait_for(response.json()["id"])
    assert (job["status"], job["vad"]) == ("completed", False), job
    text = httpx.get(f"{suite.gateway}/v1/jobs/{job['id']}/transcript?format=txt").text
    assert recall(speech_words, text) >= 0.85
    refused = upload(suite, speech_mp4, vad="perhaps")
    assert refused.status_code == 422
    assert "vad: 'perhaps' is not a boolean" in refused.json()["detail"]


RULES = [
    {},
    {"max_line_width": "20", "max_line_count": "1", "max_cue_seconds": "2.5"},
    {"max_line_width": "60", "max_line_count": "3", "max_cue_seconds": "10"},
]
RECORDINGS = ["harvard_list72_8k.wav", "hotwords.mp3"]  # under the suite's 1 MB limit


def check_subtitles(suite: Suite, job_id: str) -> None:
    """Every cue of the job's SRT and VTT, by default and as asked, meets every rule."""
    url = f"{suite.gateway}/v1/jobs/{job_id}/transcript"
    words = words_of(httpx.get(url).json())
    assert len(words) > 10
    for rules in RULES:
        limits = {
            "width": int(rules.get("max_line_width", 42)),
            "count": int(rules.get("max_line_count", 2)),
            "longest": float(rules.get("max_cue_seconds", 7)),
        }
        for fmt in ("srt", "vtt"):
            r = httpx.get(url, params={"format": fmt, **rules})
            assert r.status_code == 200, r.text
            assert_rules(parse(r.text), words, **limits)  # type: ignore[arg-type]


def test_subtitles_of_an_mp4_follow_the_rules(suite: Suite, speech_mp4: Path) -> None:
    job = suite.wait_for(upload(suite, speech_mp4).json()["id"])
    assert job["status"] == "completed", job
    check_subtitles(suite, str(job["id"]))
    url = f"{suite.gateway}/v1/jobs/{job['id']}/transcript"
    narrow = httpx.get(url, params={"format": "srt", "max_line_width": "20"}).text
    assert narrow != httpx.get(url, params={"format": "srt"}).text


@pytest.mark.skipif(not SHARED_MEDIA.is_dir(), reason="../shared/media is absent")
@pytest.mark.parametrize("name", RECORDINGS)
def test_subtitles_of_real_recordings_follow_the_rules(suite: Suite, name: str) -> None:
    job = suite.wait_for(upload(suite, SHARED_MEDIA / name).json()["id"])
    assert job["status"] == "completed", job
    check_subtitles(suite, str(job["id"]))


@pytest.mark.parametrize(
    "param,value",
    [
        ("max_line_width", "9"),
        ("max_line_width", "1_0"),
        ("max_line_count", "0"),
        ("max_line_count", "11"),
        ("max_cue_seconds", "0.5"),
        ("max_cue_seconds", "nan"),
    ],
)
def test_subtitle_rules_out_of_range_are_a_422_naming_the_parameter(
    suite: Suite, param: str, value: str
) -> None:
    r = httpx.get(
        f"{suite.gateway}/v1/jobs/{'0' * 32}/transcript", params={"format": "srt", param: value}
    )
    assert r.status_code == 422, r.text
    assert param in r.text
