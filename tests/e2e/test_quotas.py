"""Per-key budgets against the running suite: audio in flight (429 with Retry-After,
until the key's jobs end), stored media (413, until something is deleted), `url=`
downloads under the same limits, `GET /v1/usage`, clients that wait through a 429,
and failed media that is not kept for a week.

One suite of its own, with keys required and limits sized from the fixture files: a
"long" file (the fixture's speech six times over) fills a key's audio budget while
it runs, and three copies of the fixture fill its storage.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from services.splitter.decode import decode_pcm
from shared.media import probe
from tests.conftest import make_silent_video, recall
from tests.databases import PostgresServer
from tests.e2e.conftest import Suite, running_suite
from tests.e2e.test_web import ARGS, CHROMIUM

GB = 1024**3
RATE = 1000
AUDIO_MARGIN_S = 10.0  # the budget holds the long file and 10 s more: not the fixture too


@dataclass(frozen=True)
class Media:
    speech: Path
    speech_s: float
    long: Path  # alone it fits the audio budget, together with `speech` it does not
    long_s: float
    too_long: Path  # more audio than the whole budget

    @property
    def audio_budget_s(self) -> float:
        return self.long_s + AUDIO_MARGIN_S

    @property
    def storage_budget(self) -> int:
        """Room for the long file and one fixture, or for three fixtures, not four."""
        return self.long.stat().st_size + self.speech.stat().st_size + 1000


def speech_times(speech: Path, times: int, path: Path) -> Path:
    """The fixture's speech `times` over, as compact AAC (the suite takes 1 MB uploads)."""
    pcm = np.tile(np.concatenate(list(decode_pcm(speech, 3600))), times)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        stream.bit_rate = 24000
        for start in range(0, len(pcm), 1024):
            block = pcm[start : start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def seconds_of(path: Path) -> float:
    duration = probe(path).duration_s
    assert duration is not None
    return duration


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, speech_mp4: Path) -> Media:
    folder = tmp_path_factory.mktemp("quota-media")
    long = speech_times(speech_mp4, 6, folder / "long.mp4")
    too_long = speech_times(speech_mp4, 8, folder / "too-long.mp4")
    assert long.stat().st_size < 1024 * 1024 and too_long.stat().st_size < 1024 * 1024
    return Media(speech_mp4, seconds_of(speech_mp4), long, seconds_of(long), too_long)


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None, media: Media
) -> Iterator[Suite]:
    with running_suite(
        tmp_path_factory.mktemp("quotas"),
        postgres,
        VTX_AUTH="required",
        VTX_QUOTA_AUDIO_HOURS=repr(media.audio_budget_s / 3600),
        VTX_QUOTA_STORAGE_GB=repr(media.storage_budget / GB),
        VTX_RATE_LIMIT_PER_MINUTE=str(RATE),
        VTX_FAILED_MEDIA_RETENTION="PT2S",
        VTX_RECONCILE_INTERVAL_S="0.5",
    ) as suite:
        yield suite


def new_key(suite: Suite, name: str) -> dict[str, str]:
    made: dict[str, str] = json.loads(suite.vtx("keys", "create", name, "--json"))
    return made


def auth(key: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def submit(suite: Suite, path: Path, key: dict[str, str], **data: str) -> httpx.Response:
    with path.open("rb") as handle:
        return httpx.post(
            f"{suite.gateway}/v1/jobs",
            files={"file": (path.name, handle)},
            data=data,
            headers=auth(key),
            timeout=60,
        )


def usage(suite: Suite, key: dict[str, str]) -> dict[str, Any]:
    response = httpx.get(f"{suite.gateway}/v1/usage", headers=auth(key), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def held(suite: Suite, key: dict[str, str]) -> tuple[int, float, int]:
    now = usage(suite, key)
    return (
        now["active_jobs"]["used"],
        now["audio_seconds_in_flight"]["used"],
        now["stored_bytes"]["used"],
    )


def test_audio_in_flight_is_budgeted_per_key_and_usage_moves_exactly(
    limited: Suite, media: Media
) -> None:
    alice, bob = new_key(limited, "alice"), new_key(limited, "bob")
    before = usage(limited, alice)
    assert before["key_id"] == alice["id"]
    assert before["active_jobs"] == {"used": 0, "limit": 10}
    assert before["audio_seconds_in_flight"]["used"] == 0
    assert before["audio_seconds_in_flight"]["limit"] == pytest.approx(media.audio_budget_s)
    assert before["stored_bytes"] == {"used": 0, "limit": int(media.storage_budget)}
    assert before["requests_this_minute"]["limit"] == RATE
    assert before["requests_this_minute"]["used"] >= 1

    first = submit(limited, media.long, alice)
    assert first.status_code == 202, first.text
    long_s = first.json()["media"]["duration_seconds"]
    assert held(limited, alice) == (1, long_s, media.long.stat().st_size)

    refused = submit(limited, media.speech, alice)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    reason = refused.json()["detail"]
    assert reason.startswith(
        f"This key has {long_s / 60:.1f} min of audio in flight and this file adds "
        f"{media.speech_s:.1f} s, more than its limit of {media.audio_budget_s / 60:.1f} min"
    )
    assert "VTX_QUOTA_AUDIO_HOURS" in reason and "frees up as its jobs finish" in reason
    with media.speech.open("rb") as handle:  # the OpenAI route keeps the same budget
        openai = httpx.post(
            f"{limited.gateway}/v1/audio/transcriptions",
            files={"file": handle},
            data={"model": "whisper-1"},
            headers=auth(alice),
            timeout=60,
        )
    assert openai.status_code == 429 and openai.json()["error"]["message"].startswith("This key")
    assert held(limited, alice) == (1, long_s, media.long.stat().st_size)  # nothing counted

    other = submit(limited, media.speech, bob)  # another key has its own budget
    assert other.status_code == 202, other.text
    speech_s = other.json()["media"]["duration_seconds"]
    assert held(limited, bob) == (1, speech_s, media.speech.stat().st_size)

    assert limited.wait_for(first.json()["id"], 300, auth(alice))["status"] == "completed"
    assert held(limited, alice) == (0, 0, media.long.stat().st_size)  # done, media kept


def test_a_file_longer_than_the_whole_budget_is_413_not_a_wait(
    limited: Suite, media: Media
) -> None:
    carol = new_key(limited, "carol")
    refused = submit(limited, media.too_long, carol)
    assert refused.status_code == 413, refused.text
    assert "more than this key's whole budget" in refused.json()["detail"]
    assert held(limited, carol) == (0, 0, 0)


def test_vtx_transcribe_waits_through_a_429_then_succeeds(
    limited: Suite, media: Media, speech_words: list[str], tmp_path: Path
) -> None:
    dave = new_key(limited, "dave")
    blocker = submit(limited, media.long, dave)
    assert blocker.status_code == 202, blocker.text
    out = tmp_path / "speech.txt"
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "transcribe", str(media.speech),
         "--server", limited.gateway, "-o", str(out), "--timeout", "400"],
        capture_output=True, text=True, timeout=450,
        env={**limited.env, "VTX_API_KEY": dave["key"]},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "waiting: This key has" in result.stderr, result.stderr
    assert recall(speech_words, out.read_text()) >= 0.85
    assert limited.wait_for(blocker.json()["id"], 60, auth(dave))["status"] == "completed"


def test_stored_media_is_budgeted_and_deleting_a_job_frees_it(limited: Suite, media: Media) -> None:
    erin = new_key(limited, "erin")
    size = media.speech.stat().st_size
    jobs = []
    for count in range(1, 4):
        response = submit(limited, media.speech, erin)
        assert response.status_code == 202, (count, response.text)
        jobs.append(response.json()["id"])
        assert held(limited, erin)[2] == count * size

    full = submit(limited, media.speech, erin)
    assert full.status_code == 413, full.text
    reason = full.json()["detail"]
    assert reason.startswith(
        f"This caller stores {3 * size / 1024:.1f} KB of media and this file adds "
        f"{size / 1024:.1f} KB, more than its limit of {media.storage_budget / 1024:.1f} KB"
    )
    assert "VTX_QUOTA_STORAGE_GB" in reason and "DELETE /v1/jobs/{id}" in reason
    assert held(limited, erin)[2] == 3 * size

    response = httpx.delete(f"{limited.gateway}/v1/jobs/{jobs[0]}", headers=auth(erin))
    assert response.status_code == 204
    assert held(limited, erin)[2] == 2 * size
    again = submit(limited, media.speech, erin)
    assert again.status_code == 202, again.text
    for job_id in [*jobs[1:], again.json()["id"]]:
        assert limited.wait_for(job_id, 300, auth(erin))["status"] == "completed"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_the_web_page_waits_through_a_429_then_uploads(
    limited: Suite, media: Media, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    heidi = new_key(limited, "heidi")
    blocker = submit(limited, media.long, heidi)
    assert blocker.status_code == 202, blocker.text
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS
        )
        browser.set_default_timeout(20_000)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{limited.gateway}/")
            page.fill("#key-input", heidi["key"])  # keys are required: the page asks for one
            page.click("#key-dialog button[value='save']")
            page.set_input_files("#file-input", str(media.speech))
            card = page.locator("#upload-list li[data-upload='speech.mp4']")
            card.locator(".progress-text", has_text="waiting: This key has").wait_for()
            assert card.locator(".badge").inner_text().lower() == "waiting"
            card.wait_for(state="detached", timeout=300_000)  # uploaded once the first ended
            listed = page.locator("#job-list li.job", has_text="speech.mp4")
            listed.wait_for()
            assert page.locator("#upload-list li.refused").count() == 0
            assert errors == []
        finally:
            browser.close()
    blocker_job = limited.wait_for(blocker.json()["id"], 60, auth(heidi))
    assert blocker_job["status"] == "completed"
    assert held(limited, heidi)[0] <= 1  # the page's own job, if it is still running


class MediaServer:
    """Serves the fixture at /speech.mp4 and 2 MB of zeros, without a length, at /endless."""

    def __init__(self, speech: Path) -> None:
        body = speech.read_bytes()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path in ("/speech.mp4", "/endless") else 404)
                if self.path == "/speech.mp4":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path == "/speech.mp4":
                    self.wfile.write(body)
                elif self.path == "/endless":
                    for _ in range(32):
                        self.wfile.write(b"\0" * 65536)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def media_server(media: Media) -> Iterator[MediaServer]:
    server = MediaServer(media.speech)
    yield server
    server.server.shutdown()


def test_url_downloads_count_and_stop_at_the_storage_left(
    limited: Suite, media: Media, media_server: MediaServer
) -> None:
    frank = new_key(limited, "frank")
    size = media.speech.stat().st_size
    fetched = httpx.post(
        f"{limited.gateway}/v1/jobs",
        files={"url": (None, f"{media_server.base}/speech.mp4")},
        headers=auth(frank),
        timeout=60,
    )
    assert fetched.status_code == 202, fetched.text
    assert held(limited, frank)[2] == size

    # Under VTX_MAX_UPLOAD_MB (1 MB) the storage left is the smaller cap, and says so.
    endless = httpx.post(
        f"{limited.gateway}/v1/jobs",
        files={"url": (None, f"{media_server.base}/endless")},
        headers=auth(frank),
        timeout=60,
    )
    assert endless.status_code == 413, endless.text
    left = media.storage_budget - size
    assert endless.json()["detail"].startswith(
        f"The download is larger than the {left / 1024:.1f} KB this caller may still store"
    )
    assert held(limited, frank)[2] == size
    assert limited.wait_for(fetched.json()["id"], 300, auth(frank))["status"] == "completed"


def test_failed_media_is_dropped_after_its_shorter_retention(
    limited: Suite, media: Media, tmp_path: Path
) -> None:
    grace = new_key(limited, "grace")
    silent = make_silent_video(tmp_path / "silent.mp4")
    failing = submit(limited, silent, grace)
    assert failing.status_code == 202, failing.text
    working = submit(limited, media.speech, grace)
    assert working.status_code == 202, working.text
    failed = limited.wait_for(failing.json()["id"], 120, auth(grace))
    assert failed["status"] == "failed"
    assert limited.wait_for(working.json()["id"], 300, auth(grace))["status"] == "completed"

    deadline = time.monotonic() + 60  # VTX_FAILED_MEDIA_RETENTION=PT2S, swept every 0.5 s
    while held(limited, grace)[2] != media.speech.stat().st_size:
        assert time.monotonic() < deadline, usage(limited, grace)
        time.sleep(0.5)
    url = f"{limited.gateway}/v1/jobs/{failed['id']}/media"
    gone = httpx.get(url, headers=auth(grace))
    assert gone.status_code == 404 and "no longer stored" in gone.json()["detail"]
    kept = f"{limited.gateway}/v1/jobs/{working.json()['id']}/media"
    assert httpx.get(kept, headers=auth(grace)).status_code == 200  # a success keeps a week


def test_the_open_api_shows_its_storage_cap_and_no_audio_budget(suite: Suite) -> None:
    response = httpx.get(f"{suite.gateway}/v1/usage", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key_id"] is None
    assert body["audio_seconds_in_flight"]["limit"] is None
    assert body["active_jobs"]["limit"] is None
    assert body["stored_bytes"]["limit"] == 50 * GB
    assert body["requests_this_minute"] is None
