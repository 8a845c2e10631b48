"""The web page in a real headless Chromium (Debian's), against the suite as `vtx up` runs it.

Screenshots of the finished page go to test-output/web/ at the repository root.
"""

from __future__ import annotations

import itertools
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, sync_playwright

from tests.conftest import recall
from tests.e2e.conftest import Suite

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

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="needs Debian's chromium (bash scripts/system-deps.sh installs it)",
)


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


def wait_js(page: Page, script: str, arg: object = None, timeout: float = 20) -> None:
    """Poll a function in the page until it returns something true.

    (Playwright's wait_for_function evaluates strings, which the page's CSP forbids;
    evaluate() goes through the debugger protocol, which it does not.)
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {script}"
        time.sleep(0.05)


def test_upload_follow_read_seek_and_download(
    suite: Suite, context: BrowserContext, speech_mp4: Path, speech_words: list[str]
) -> None:
    began = time.monotonic()
    page = _page(context)
    page.goto(f"{suite.gateway}/")
    assert page.title().startswith("vtx")
    # Record every value the job's bar shows, to see it move and end at 100.
    page.evaluate(
        """() => { window.__bar = [];
        setInterval(() => { const p = document.querySelector('#job-list progress');
          if (p && p.hasAttribute('value')) window.__bar.push(p.value); }, 40); }"""
    )
    page.set_input_files("#file-input", str(speech_mp4))

    item = page.locator("#job-list li.job").first
    item.wait_for()
    job_id = item.get_attribute("data-id")
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
