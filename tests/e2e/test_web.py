"""The web page in a real headless Chromium (Debian's), against the suite as `vtx up` runs it.

Screenshots of the finished page go to test-output/web/ at the repository root.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, sync_playwright

from services.gateway.api.routes.web import ASSETS, MODULES, STATIC_DIR
from shared import db
from shared.config import Settings
from shared.models import Job, Transcript
from tests.conftest import SHARED_MEDIA, recall
from tests.databases import PostgresServer
from tests.e2e.conftest import Suite, gateway_without_speakers
from tests.e2e.harness import Cluster
from tests.e2e.test_speakers_api import (
    SPEAKERS_RUN,
    speakers_worker_alive,
)
from tests.subtitle_rules import assert_rules, parse, words_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "web"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
]

pytestmark = [
    pytest.mark.one_database,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="needs Debian's chromium (bash scripts/system-deps.sh installs it)",
    ),
]


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A fresh profile each run; Playwright never downloads a browser here."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1360, "height": 900},
            accept_downloads=True,
        )
        ctx.set_default_timeout(20_000)
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture(autouse=True)
def pages_closed_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's pages closed after it: an open page keeps its event stream, and six
    of them take every connection the browser allows to one host (the next test's
    upload then never starts)."""
    yield
    if "context" in request.fixturenames:
        context: BrowserContext = request.getfixturevalue("context")
        for page in context.pages:
            if page.url != "about:blank":
                page.close()


def _page(context: BrowserContext) -> Page:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.errors = errors  # type: ignore[attr-defined]
    return page


IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']""", re.M | re.S)


def test_the_page_is_es_modules_loaded_from_one_entry_with_relative_imports_only() -> None:
    """index.html loads main.js alone, as a module; every module imports only siblings by
    relative URL, every module is served and reached from main.js, and none is dead."""
    html = (STATIC_DIR / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script type="module" src="/static/main.js">'], scripts
    files = {p.name for p in STATIC_DIR.glob("*.js")}
    assert files == set(MODULES) and all(
        ASSETS[name].startswith("text/javascript") for name in files
    )
    reached, todo = set(), ["main.js"]
    while todo:
        name = todo.pop()
        reached.add(name)
        source = (STATIC_DIR / name).read_text()
        for target in IMPORT.findall(source):
            assert re.fullmatch(r"\./[a-z]+\.js", target), f"{name} imports {target!r}"
            assert target[2:] in files, f"{name} imports a missing {target}"
            if target[2:] not in reached:
                todo.append(target[2:])
        assert not re.search(r"\bimport\s*\(", source), f"{name} imports at run time"
        assert "window.state" not in source and not re.search(r"^(let|var) ", source, re.M), name
    assert reached == files, f"never imported: {files - reached}"


def wait_js(page: Page, script: str, arg: object = None, timeout: float = 20) -> None:
    """Poll a function in the page until it returns something true.

    (Playwright's wait_for_function evaluates strings, which the page's CSP forbids;
    evaluate() goes through the debugger protocol, which it does not.)
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {script}"
        time.sleep(0.05)


def track_new_card(page: Page, suite: Suite) -> None:
    """`window.__mine()`: the card of the job this test uploads next. Jobs of earlier
    tests share the suite, and the page lists them too."""
    earlier = [j["id"] for j in httpx.get(f"{suite.gateway}/v1/jobs?limit=200").json()["items"]]
    page.evaluate(
        """earlier => { const old = new Set(earlier);
        window.__mine = () => [...document.querySelectorAll('#job-list li.job')]
          .find(li => !old.has(li.dataset.id)); }""",
        earlier,
    )


def test_upload_follow_read_seek_and_download(
    suite: Suite, context: BrowserContext, speech_mp4: Path, speech_words: list[str]
) -> None:
    began = time.monotonic()
    page = _page(context)
    page.goto(f"{suite.gateway}/")
    assert page.title().startswith("vtx")
    # Record every value this upload's bar shows, to see it move and end at 100. Jobs of
    # earlier tests share the suite, and the page lists them too: their cards are skipped.
    track_new_card(page, suite)
    page.evaluate(
        """() => { window.__bar = [];
        setInterval(() => { const p = window.__mine()?.querySelector('progress');
          if (p && p.hasAttribute('value')) window.__bar.push(p.value); }, 40); }"""
    )
    page.set_input_files("#file-input", str(speech_mp4))

    wait_js(page, "() => window.__mine()?.dataset.id")
    job_id = page.evaluate("() => window.__mine().dataset.id")
    item = page.locator(f"#job-list li.job[data-id='{job_id}']")
    assert job_id and re.fullmatch(r"[0-9a-f]{32}", job_id)
    wait_js(
        page,
        "id => { const p = document.querySelector(`#job-list li[data-id='${id}'] progress`);"
        " return p && p.value === 100; }",
        job_id,
        timeout=90,
    )
    # The sampler runs every 40 ms: let it see the final value too.
    wait_js(page, "() => window.__bar.at(-1) === 100", timeout=5)
    seen = page.evaluate("window.__bar")
    assert seen[-1] == 100 and all(a <= b for a, b in itertools.pairwise(seen)), seen
    assert "Transcript ready" in item.locator(".progress-text").inner_text()

    # The viewer opened by itself; the transcript arrives and the media plays from our route.
    assert page.url.endswith(f"#job={job_id}")
    page.locator("#transcript .word").nth(10).wait_for()
    assert recall(speech_words, page.locator("#transcript").inner_text()) >= 0.85
    wait_js(page, "() => document.querySelector('#player').readyState >= 1")
    duration = page.evaluate("document.querySelector('#player').duration")
    doc = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}/transcript?format=json").json()
    assert abs(duration - doc["duration"]) < 1.0

    # Clicking a word moves the player to that word's start.
    words = [w for s in doc["segments"] for w in s["words"]]
    target = len(words) * 2 // 3
    page.locator(f"#transcript .word[data-i='{target}']").click()
    now = page.evaluate(
        "() => { const p = document.querySelector('#player'); p.pause(); return p.currentTime; }"
    )
    assert words[target]["start"] - 0.05 <= now <= words[target]["start"] + 1.0, (
        now,
        words[target],
    )
    wait_js(page, "() => document.querySelector('#transcript .segment.current') !== null")
    current = page.locator("#transcript .segment.current").inner_text()
    assert words[target]["word"].strip() in current

    # Search marks the matches and says how many.
    needle = max((w["word"].strip(".,!? ") for w in words), key=len)
    page.fill("#search-input", needle)
    wait_js(page, "() => document.querySelectorAll('#transcript .word.match').length > 0")
    assert "of" in page.locator("#search-count").inner_text()

    # The SRT download holds the cues the API serves.
    with page.expect_download() as download:
        page.click("#downloads a[data-format='srt']")
    srt = Path(download.value.path()).read_text()
    assert download.value.suggested_filename == "speech.srt"
    assert re.search(r"^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n\S", srt, re.M), srt
    expected = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}/transcript?format=srt").text
    assert srt == expected
    doc = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}/transcript").json()
    assert_rules(parse(srt), words_of(doc))  # the page's download follows the broadcast rules

    shot = OUTPUT / "finished.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")
    page.set_viewport_size({"width": 390, "height": 844})
    phone = OUTPUT / "finished-phone.png"
    page.screenshot(path=str(phone), full_page=False)
    print(f"screenshot: {phone}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
    page.set_viewport_size({"width": 1360, "height": 900})

    # The list survives a reload, and the open job comes back with it.
    page.reload()
    page.locator(f"#job-list li[data-id='{job_id}']").wait_for()
    page.locator("#transcript .word").first.wait_for()

    # Delete it: gone from the page and from the API.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#job-list li[data-id='{job_id}'] .job-delete")
    page.locator(f"#job-list li[data-id='{job_id}']").wait_for(state="detached")
    assert page.locator("#viewer-job").is_hidden()
    assert httpx.get(f"{suite.gateway}/v1/jobs/{job_id}").status_code == 404
    assert page.errors == []  # type: ignore[attr-defined]
    assert time.monotonic() - began < 60


def test_refused_uploads_show_the_servers_reason(
    suite: Suite, context: BrowserContext, tmp_path: Path
) -> None:
    page = _page(context)
    page.goto(f"{suite.gateway}/")
    fake = tmp_path / "notes.mp4"
    fake.write_text("These are my meeting notes, not a video.\n" * 20)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.mp3"  # the suite allows 1 MB
    huge.write_bytes(b"\0" * (1536 * 1024))
    page.set_input_files("#file-input", [str(fake), str(empty), str(huge)])

    expectations = {
        "notes.mp4": (fake, 415),
        "empty.wav": (empty, 400),
        "huge.mp3": (huge, 413),
    }
    for name, (path, code) in expectations.items():
        item = page.locator(f"#upload-list li[data-upload='{name}']")
        message = item.locator(".error-box[role='alert']")
        message.wait_for()
        with path.open("rb") as handle:
            answer = httpx.post(f"{suite.gateway}/v1/jobs", files={"file": (name, handle)})
        assert answer.status_code == code
        text = message.inner_text()
        assert text == f"{name} was refused: {answer.json()['detail']}", text
        assert item.locator(".badge").inner_text().lower() == "refused"
    assert page.locator("#job-list li.job").count() == 0 or all(
        name not in t
        for t in page.locator("#job-list .job-name").all_inner_texts()
        for name in expectations
    )
    page.screenshot(path=str(OUTPUT / "refused.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(OUTPUT / "refused-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1360, "height": 900})
    print(f"\nscreenshots: {OUTPUT / 'refused.png'}, {OUTPUT / 'refused-phone.png'}")
    page.locator("#upload-list li[data-upload='notes.mp4'] button").click()
    assert page.locator("#upload-list li[data-upload='notes.mp4']").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_api_key_is_asked_for_on_401_and_only_sent_as_a_header(
    suite: Suite, context: BrowserContext
) -> None:
    """No auth exists yet: the browser plays a server that wants `Bearer s3cret-key`."""
    key = "s3cret-key"
    urls: list[str] = []

    def guard(route: Route) -> None:
        urls.append(route.request.url)
        if route.request.headers.get("authorization") != f"Bearer {key}":
            route.fulfill(status=401, content_type="application/json", body='{"detail":"no"}')
        else:
            route.continue_()

    page = _page(context)
    page.route("**/v1/**", guard)
    page.goto(f"{suite.gateway}/")
    dialog = page.locator("#key-dialog")
    dialog.wait_for(state="visible")
    assert page.evaluate("() => document.activeElement.id") == "key-input"
    page.fill("#key-input", key)
    page.click("#key-dialog button[value='save']")
    dialog.wait_for(state="hidden")
    wait_js(
        page,
        "() => !document.querySelector('#jobs-empty').hidden || "
        "document.querySelectorAll('#job-list li').length > 0",
    )
    assert page.evaluate("() => localStorage.getItem('vtx.apiKey')") == key
    assert page.locator("#key-button").is_visible()

    page.reload()  # the stored key is used at once: no second question
    wait_js(
        page,
        "() => !document.querySelector('#jobs-empty').hidden || "
        "document.querySelectorAll('#job-list li').length > 0",
    )
    assert dialog.is_hidden()
    assert urls and not any(key in url for url in urls)
    page.click("#key-button")
    assert page.evaluate("() => localStorage.getItem('vtx.apiKey')") is None
    page.unroute("**/v1/**")
    assert page.errors == []  # type: ignore[attr-defined]


DROP = """async ({ names, data }) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const dropped = new DataTransfer();
  for (const name of names) dropped.items.add(new File([bytes], name, { type: "video/mp4" }));
  window.dispatchEvent(new DragEvent("drop", { dataTransfer: dropped, cancelable: true }));
  return [...document.querySelectorAll("#upload-list li .badge")].map((b) => b.textContent);
}"""

# Counts the page's uploads (XHRs) under way; a request ends at readyState 4, which comes
# before the `load` handler that starts the next upload.
COUNT_UPLOADS = """window.__uploads = { now: 0, most: 0 };
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (body) {
  const count = window.__uploads;
  count.now += 1;
  count.most = Math.max(count.most, count.now);
  let ended = false;
  this.addEventListener("readystatechange", () => {
    if (!ended && this.readyState === 4) {
      ended = true;
      count.now -= 1;
    }
  });
  return send.call(this, body);
};"""

# A request from the page itself, bounded: it fails the test if it waits behind streams.
OWN_REQUEST = """async () => {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 30000);
  try {
    const response = await fetch("/v1/jobs?limit=1", { signal: stop.signal });
    return response.status;
  } catch (e) {
    return String(e);
  } finally {
    clearTimeout(timer);
  }
}"""


def test_ten_files_at_once_share_one_event_stream_and_upload_a_few_at_a_time(
    suite: Suite, context: BrowserContext, speech_mp4: Path, speech_words: list[str]
) -> None:
    """Ten jobs at once: one stream for the list (the browser has six connections to a
    host, and one stream per job would take them all), uploads three at a time."""
    page = _page(context)
    streams: list[str] = []
    page.on(
        "request",
        lambda r: streams.append(r.url) if r.url.split("?")[0].endswith("/events") else None,
    )
    page.add_init_script(COUNT_UPLOADS)
    page.goto(f"{suite.gateway}/")
    page.locator("#jobs-status").wait_for(state="attached")
    wait_js(page, "() => document.readyState === 'complete'")
    names = [f"ten-{i:02d}.mp4" for i in range(10)]
    data = base64.b64encode(speech_mp4.read_bytes()).decode()
    badges = page.evaluate(DROP, {"names": names, "data": data})
    assert sorted(badges) == ["queued"] * 7 + ["uploading"] * 3, badges
    assert "Queued on this page" in page.locator("#upload-list").inner_text()

    ours = (
        "[...document.querySelectorAll('#job-list li.job')]"
        ".filter(li => li.querySelector('.job-name').textContent.startsWith('ten-'))"
    )
    wait_js(page, f"() => {ours}.length === 10", timeout=120)
    assert page.locator("#upload-list li").count() == 0
    assert page.evaluate(OWN_REQUEST) == 200  # not stalled behind the page's streams
    wait_js(
        page,
        f"() => {ours}.every(li => li.dataset.status === 'completed'"
        " && li.querySelector('progress').value === 100)",
        timeout=300,
    )
    assert page.evaluate(OWN_REQUEST) == 200
    most = page.evaluate("window.__uploads.most")
    assert 1 <= most <= 3, f"{most} uploads ran at once"
    assert len(streams) == 1 and streams[0].endswith("/v1/events"), streams

    # The first upload opened in the viewer by itself; its transcript reads right.
    page.locator("#transcript .word").nth(10).wait_for()
    assert recall(speech_words, page.locator("#transcript").inner_text()) >= 0.85
    page.screenshot(path=str(OUTPUT / "ten-jobs.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]
    for job_id in page.evaluate(f"() => {ours}.map(li => li.dataset.id)"):
        assert httpx.delete(f"{suite.gateway}/v1/jobs/{job_id}").status_code == 204


def test_without_the_list_stream_the_page_polls_the_list(
    suite: Suite, context: BrowserContext, speech_mp4: Path
) -> None:
    """Refused its one stream (the key's streams are all taken), the page still follows
    its jobs to the end, by polling the job list."""
    page = _page(context)
    refused: list[str] = []
    polls: list[str] = []

    def full(route: Route) -> None:
        refused.append(route.request.url)
        route.fulfill(
            status=429,
            headers={"Retry-After": "10"},
            content_type="application/json",
            body='{"detail": "This address has 8 event streams open (VTX_MAX_EVENT_STREAMS)"}',
        )

    page.route("**/v1/events", full)
    page.on("request", lambda r: polls.append(r.url) if "/v1/jobs?limit=" in r.url else None)
    page.goto(f"{suite.gateway}/")
    track_new_card(page, suite)
    page.set_input_files("#file-input", str(speech_mp4))
    wait_js(page, "() => window.__mine()?.dataset.id")
    job_id = page.evaluate("() => window.__mine().dataset.id")
    wait_js(
        page,
        "id => { const li = document.querySelector(`#job-list li[data-id='${id}']`);"
        " return li.dataset.status === 'completed'"
        " && li.querySelector('progress').value === 100; }",
        job_id,
        timeout=120,
    )
    assert refused, "the page never asked for the list stream"
    assert len(polls) >= 3, polls  # the first listing, then rounds of polling
    page.unroute("**/v1/events")
    assert page.errors == []  # type: ignore[attr-defined]
    assert httpx.delete(f"{suite.gateway}/v1/jobs/{job_id}").status_code == 204


def test_voice_detection_can_be_turned_off_for_an_upload(
    suite: Suite, context: BrowserContext, speech_mp4: Path, tmp_path: Path
) -> None:
    """The suite runs with VTX_VAD on: the box turns it off for the uploads it is checked
    for, and left alone it sends nothing, so the server's default holds."""
    page = _page(context)
    page.goto(f"{suite.gateway}/")
    box = page.get_by_label("Transcribe all the audio")
    assert not box.is_checked()
    for checked in (True, False):
        box.set_checked(checked)
        named = tmp_path / f"vad-{checked}.mp4"
        named.write_bytes(speech_mp4.read_bytes())
        track_new_card(page, suite)
        page.set_input_files("#file-input", str(named))
        wait_js(page, "() => window.__mine()?.dataset.id")
        job = suite.wait_for(page.evaluate("() => window.__mine().dataset.id"))
        assert (job["filename"], job["vad"]) == (named.name, not checked), job
        assert job["status"] == "completed", job
    assert page.errors == []  # type: ignore[attr-defined]


def test_hotwords_typed_in_the_page_reach_the_job(
    suite: Suite, context: BrowserContext, speech_mp4: Path, tmp_path: Path
) -> None:
    page = _page(context)
    page.goto(f"{suite.gateway}/")
    page.locator("#hotwords-input").fill("  ComfyUI Kubernetes ")
    named = tmp_path / "hotwords-page.mp4"
    named.write_bytes(speech_mp4.read_bytes())
    track_new_card(page, suite)
    page.set_input_files("#file-input", str(named))
    wait_js(page, "() => window.__mine()?.dataset.id")
    job = suite.wait_for(page.evaluate("() => window.__mine().dataset.id"))
    assert (job["filename"], job["hotwords"]) == (named.name, "ComfyUI Kubernetes"), job
    assert page.errors == []  # type: ignore[attr-defined]


STEREO = SHARED_MEDIA / "stereo_diarization.wav"


@pytest.fixture(scope="module")
def gateway_alone(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer | None
) -> Iterator[Cluster]:
    """A gateway with no speakers service (nor any worker) beside it, started from a
    thread of its own: Playwright's sync API keeps an event loop running in this one,
    and the cluster migrates its database with asyncio.run."""
    started = gateway_without_speakers(tmp_path_factory.mktemp("alone"), postgres)
    with ThreadPoolExecutor(1) as pool:
        cluster = pool.submit(started.__enter__).result()
    try:
        yield cluster
    finally:
        started.__exit__(None, None, None)


def test_the_speakers_selector_sends_what_is_chosen(
    gateway_alone: Cluster, context: BrowserContext, speech_mp4: Path, tmp_path: Path
) -> None:
    """Off sends nothing; a choice is sent as `speakers`. A gateway without a speakers
    service refuses it, and the page shows why (what to install)."""
    page = _page(context)
    page.goto(f"{gateway_alone.gateway}/")
    select = page.locator("#speakers-input")
    assert select.input_value() == ""
    forms: list[bytes] = []

    def sent(route: Route) -> None:
        if route.request.method == "POST":
            forms.append(route.request.post_data_buffer or b"")
        route.continue_()

    page.route("**/v1/jobs", sent)
    select.select_option("auto")
    named = tmp_path / "speakers-page.mp4"
    named.write_bytes(speech_mp4.read_bytes())
    page.set_input_files("#file-input", str(named))
    message = page.locator(f"#upload-list li[data-upload='{named.name}'] .error-box")
    message.wait_for()
    text = " ".join(message.inner_text().split())
    assert text.startswith(f"{named.name} was refused: Speakers were asked for"), text
    assert "pip install 'vtx[speakers]'" in text
    assert len(forms) == 1 and b'name="speakers"\r\n\r\nauto\r\n' in forms[0], forms[0][:300]
    select.select_option("")
    page.set_input_files("#file-input", str(speech_mp4))
    deadline = time.monotonic() + 20
    while len(forms) < 2:
        assert time.monotonic() < deadline, "the second upload was never sent"
        page.wait_for_timeout(50)
    assert b'name="speakers"' not in forms[1] and b'name="file"' in forms[1]
    wait_js(
        page, "() => /speech.mp4 uploaded/.test(document.querySelector('#jobs-status').textContent)"
    )
    assert page.errors == []  # type: ignore[attr-defined]


def _with_speakers(suite: Suite, job_id: str) -> None:
    """Stand in for the speakers service, which this suite does not run: give a real
    completed job's transcript the speakers the merge would have written (segments
    taking turns between S1 and S2) and mark the job as one that asked for them."""

    async def rewrite() -> None:
        settings = Settings(data_dir=suite.data_dir, database_url=suite.env.get("VTX_DATABASE_URL"))
        engine = db.create_engine(settings)
        try:
            async with db.session_factory(engine)() as session:
                job = await session.get(Job, job_id)
                transcript = await session.get(Transcript, job_id)
                assert job is not None and transcript is not None
                segments = []
                for i, seg in enumerate(transcript.segments):
                    label = f"S{i % 2 + 1}"
                    words = [{**w, "speaker": label} for w in seg.get("words", [])]
                    segments.append({**seg, "speaker": label, "words": words})
                transcript.segments = segments
                job.speakers, job.speaker_route = "auto", "voices"
                session.add_all([job, transcript])
                await session.commit()
        finally:
            await engine.dispose()

    # Its own thread: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(rewrite())).result()


def test_speakers_are_coloured_and_renamed_for_the_downloads(
    suite: Suite, context: BrowserContext, speech_mp4: Path
) -> None:
    if SPEAKERS_RUN and STEREO.exists():
        speakers_worker_alive(suite)
        with STEREO.open("rb") as handle:
            created = httpx.post(
                f"{suite.gateway}/v1/jobs",
                files={"file": (STEREO.name, handle)},
                data={"speakers": "auto"},
                timeout=60,
            )
        job = suite.wait_for(created.json()["id"], timeout=300)
    else:
        with speech_mp4.open("rb") as handle:
            created = httpx.post(
                f"{suite.gateway}/v1/jobs", files={"file": ("panel.mp4", handle)}, timeout=60
            )
        job = suite.wait_for(created.json()["id"])
        _with_speakers(suite, str(job["id"]))
    assert job["status"] == "completed", job
    job_id = str(job["id"])
    page = _page(context)
    page.goto(f"{suite.gateway}/#job={job_id}")
    page.locator("#transcript .seg-speaker").first.wait_for()

    # Each speaker has its own colour, on its segments and in the legend.
    legend = page.locator("#speakers-list li.speaker")
    assert legend.count() == 2 and page.locator("#speakers").is_visible()
    colours = page.evaluate(
        """() => [...document.querySelectorAll('#transcript .segment')].map(row => [
          row.querySelector('.seg-speaker').dataset.speaker,
          getComputedStyle(row).borderLeftColor])"""
    )
    by_label = dict(colours)
    assert set(by_label) == {"S1", "S2"} and by_label["S1"] != by_label["S2"], colours
    assert all(by_label[label] == colour for label, colour in colours), colours

    # Rename S1 in the legend: stored on the job, shown on every segment of S1.
    legend.first.get_by_role("button", name="Rename S1").click()
    box = page.get_by_label("Name of S1")
    box.fill("  Ana Lima ")
    box.press("Enter")
    wait_js(
        page, "() => document.querySelector('#transcript .seg-speaker').textContent === 'Ana Lima'"
    )
    stored = httpx.get(f"{suite.gateway}/v1/jobs/{job_id}").json()
    assert stored["speaker_names"] == {"S1": "Ana Lima"}
    shown = page.locator("#transcript .seg-speaker").all_inner_texts()
    assert set(shown) == {"Ana Lima", "S2"}, shown
    assert "Ana Lima" in legend.first.inner_text() and "S1" in legend.first.inner_text()
    assert "the downloads use the name" in page.locator("#viewer-status").inner_text()

    # A name the server refuses leaves things as they were and says why.
    legend.nth(1).get_by_role("button", name="Rename S2").click()
    page.get_by_label("Name of S2").fill("x" * 64)
    page.evaluate("() => { document.querySelector('#speaker-name-S2').value = 'a\\tb'; }")
    page.get_by_label("Name of S2").press("Enter")
    wait_js(
        page,
        "() => /Could not rename S2/.test(document.querySelector('#viewer-status').textContent)",
    )
    assert "printable" in page.locator("#viewer-status").inner_text()
    assert httpx.get(f"{suite.gateway}/v1/jobs/{job_id}").json()["speaker_names"] == {
        "S1": "Ana Lima"
    }
    page.get_by_label("Name of S2").press("Escape")

    # The downloads are the server's, names applied.
    with page.expect_download() as download:
        page.click("#downloads a[data-format='vtt']")
    vtt = Path(download.value.path()).read_text()
    assert vtt == httpx.get(f"{suite.gateway}/v1/jobs/{job_id}/transcript?format=vtt").text
    assert "<v Ana Lima>" in vtt and "<v S2>" in vtt and "S1" not in vtt, vtt
    page.screenshot(path=str(OUTPUT / "speakers.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(OUTPUT / "speakers-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1360, "height": 900})

    # Forget the name: the label comes back.
    legend.first.get_by_role("button", name="Rename Ana Lima").click()
    page.get_by_label("Name of S1").fill("")
    page.get_by_label("Name of S1").press("Enter")
    wait_js(page, "() => document.querySelector('#transcript .seg-speaker').textContent === 'S1'")
    assert httpx.get(f"{suite.gateway}/v1/jobs/{job_id}").json()["speaker_names"] == {}
    assert page.errors == []  # type: ignore[attr-defined]
    assert httpx.delete(f"{suite.gateway}/v1/jobs/{job_id}").status_code == 204
