/* The open job: its media in a player beside its transcript, which follows playback;
 * a click on a word or a time plays from there; downloads of the transcript. The open
 * job and its view live in `store.current` and `store.view`. */
import { problem } from "./api.js";
import { el, scrollIntoBox } from "./dom.js";
import { baseName, bytes, clock, describe, finished, jobName, setBar, when } from "./format.js";
import { colourOf } from "./speakers.js";

const FOLLOW_PAUSE_MS = 4000;

/** `remember(job)` keeps a job fetched here in the list's store; `onShown(id)` says which
 * job is open (null: none); `speakers` colours and names the transcript's speakers. */
export function createViewer({ ui, api, store, search, speakers, remember, onShown }) {
  const downloadLinks = [...ui.downloads.querySelectorAll("a[data-format]")];

  function close() {
    const view = store.view;
    if (view?.player) {
      view.player.pause();
      view.player.removeAttribute("src");
      view.player.load();
    }
    if (view?.blobUrl) URL.revokeObjectURL(view.blobUrl);
    store.current = null;
    store.view = null;
    speakers.hide();
    onShown(null);
    ui.viewerJob.hidden = true;
    ui.viewerEmpty.hidden = false;
    if (location.hash.startsWith("#job=")) history.replaceState(null, "", location.pathname);
  }

  async function open(id, { focus = true } = {}) {
    if (store.current === id) return;
    if (store.current) close();
    let job = store.jobs.get(id);
    if (!job) {
      const response = await api.request(`/v1/jobs/${id}`).catch(() => null);
      if (!response || !response.ok) {
        ui.jobsStatus.textContent = response
          ? `Cannot open that job: ${await problem(response)}`
          : "The server cannot be reached.";
        history.replaceState(null, "", location.pathname);
        return;
      }
      job = await response.json();
      remember(job);
    }
    store.current = id;
    store.view = { id, words: [], segments: [], matches: [], match: -1, lastUser: 0 };
    onShown(id);
    ui.viewerEmpty.hidden = true;
    ui.viewerJob.hidden = false;
    ui.viewerTitle.textContent = jobName(job);
    const media = job.media || {};
    ui.viewerMeta.textContent = [
      media.duration_seconds ? clock(media.duration_seconds) : "",
      media.has_video ? "video" : "audio",
      bytes(job.size_bytes),
      when(job.created_at),
    ]
      .filter(Boolean)
      .join(" · ");
    mountPlayer(job);
    for (const link of downloadLinks) {
      const format = link.dataset.format;
      link.href = `/v1/jobs/${id}/transcript?format=${format}`;
      link.setAttribute("download", `${baseName(job)}.${format}`);
    }
    ui.transcript.replaceChildren();
    speakers.hide();
    search.reset(true);
    update(job, null);
    if (focus) ui.viewer.focus({ preventScroll: window.innerWidth > 760 });
    if (focus && window.innerWidth <= 760) ui.viewer.scrollIntoView({ block: "start" });
  }

  function mediaUrl(job) {
    return job.links?.media || `/v1/jobs/${job.id}/media`;
  }

  function mountPlayer(job) {
    const video = job.media?.has_video !== false;
    const player = el(video ? "video" : "audio", {
      controls: true,
      preload: "metadata",
      playsinline: true,
      id: "player",
      "aria-label": `${video ? "Video" : "Audio"}: ${jobName(job)}`,
    });
    player.src = mediaUrl(job);
    let retried = false;
    // A media element cannot send the key; with one set, fetch the file ourselves.
    player.addEventListener("error", async () => {
      if (retried || !api.key() || store.view?.player !== player) return;
      retried = true;
      const response = await api.request(mediaUrl(job)).catch(() => null);
      if (!response || !response.ok || store.view?.player !== player) return;
      const url = URL.createObjectURL(await response.blob());
      store.view.blobUrl = url;
      player.src = url;
    });
    player.addEventListener("timeupdate", () => highlight());
    player.addEventListener("seeked", () => highlight(true));
    player.addEventListener("play", () => tick());
    ui.playerBox.replaceChildren(player);
    store.view.player = player;
  }

  /** Show a change of the open job (called for every change of any job). */
  function update(job, before) {
    if (store.current !== job.id || !store.view) return;
    ui.viewerProgress.hidden = finished(job);
    setBar(ui.viewerBar, job);
    const text = describe(job);
    if (ui.viewerProgressText.textContent !== text) ui.viewerProgressText.textContent = text;
    ui.viewerError.hidden = job.status !== "failed";
    if (job.status === "failed") {
      ui.viewerError.textContent = `This job failed: ${job.error || "no reason was given."}`;
      ui.viewerStatus.textContent = "";
      note("There is no transcript, because the job failed.");
    }
    ui.downloads.hidden = job.status !== "completed";
    if (job.status === "completed") {
      if (!before || before.status !== "completed" || !store.view.loaded) loadTranscript(job.id);
      else if (JSON.stringify(before.speaker_names) !== JSON.stringify(job.speaker_names)) {
        speakers.relabel(); // renamed here or in another tab
      }
    } else if (job.status !== "failed" && !ui.transcript.querySelector(".transcript-note")) {
      note("The transcript appears here as soon as the job is done.");
    }
  }

  function note(text) {
    ui.transcript.replaceChildren(el("p", { class: "transcript-note", text }));
  }

  async function loadTranscript(id) {
    const view = store.view;
    if (!view || view.id !== id || view.loading) return;
    view.loading = true;
    ui.transcript.setAttribute("aria-busy", "true");
    ui.viewerStatus.textContent = "Loading the transcript…";
    try {
      const response = await api.request(`/v1/jobs/${id}/transcript?format=json`);
      if (store.view !== view) return;
      if (!response.ok) {
        ui.viewerStatus.textContent = `Could not load the transcript: ${await problem(response)}`;
        return;
      }
      render(view, await response.json());
      view.loaded = true;
      const n = view.words.length;
      ui.viewerStatus.textContent = `Transcript loaded: ${view.segments.length} segments, ${n} words.`;
    } catch {
      ui.viewerStatus.textContent = "Could not load the transcript (connection lost).";
    } finally {
      view.loading = false;
      ui.transcript.setAttribute("aria-busy", "false");
    }
  }

  function render(view, doc) {
    const fragment = document.createDocumentFragment();
    view.words = [];
    view.segments = [];
    for (const seg of doc.segments || []) {
      const text = el("span", { class: "seg-text" });
      const words = seg.words && seg.words.length ? seg.words : [{ start: seg.start, end: seg.end, word: seg.text }];
      words.forEach((w, i) => {
        const span = el("span", { class: "word", "data-i": String(view.words.length) });
        span.textContent = String(w.word).trim();
        if (i) text.append(" ");
        text.append(span);
        view.words.push({ start: w.start, end: w.end, el: span, text: span.textContent });
      });
      const time = el("button", {
        type: "button",
        class: "seg-time",
        "data-start": String(seg.start),
        "aria-label": `Play from ${clock(seg.start)}`,
        text: clock(seg.start),
      });
      const row = el(
        "div",
        { class: `segment ${colourOf(seg.speaker)}`.trim(), "data-start": String(seg.start) },
        time,
        el("div", { class: "seg-body" }, speakers.tag(seg.speaker), text),
      );
      fragment.append(row);
      view.segments.push({ start: seg.start, end: seg.end, el: row });
    }
    speakers.show(doc);
    if (!view.segments.length) {
      note("No speech was found in this file.");
    } else {
      ui.transcript.replaceChildren(fragment);
      ui.transcript.scrollTop = 0;
    }
    search.enable(view.words.length > 0);
    search.reset(false);
    highlight(true);
  }

  function seek(seconds) {
    const player = store.view?.player;
    if (!player) return;
    player.currentTime = seconds;
    store.view.lastUser = 0; // follow playback again from the new place
    highlight(true);
    if (player.paused) player.play().catch(() => {});
  }

  function highlight(force = false) {
    const view = store.view;
    if (!view || !view.player || !view.segments.length) return;
    const t = view.player.currentTime;
    const w = lastStarted(view.words, t);
    const word = w >= 0 && t <= view.words[w].end + 0.35 ? view.words[w] : null;
    if (word !== view.nowWord) {
      view.nowWord?.el.classList.remove("now");
      word?.el.classList.add("now");
      view.nowWord = word;
    }
    const s = lastStarted(view.segments, t);
    const seg = s >= 0 ? view.segments[s] : null;
    if (seg !== view.nowSeg || force) {
      if (view.nowSeg && view.nowSeg !== seg) {
        view.nowSeg.el.classList.remove("current");
        view.nowSeg.el.removeAttribute("aria-current");
      }
      if (seg) {
        seg.el.classList.add("current");
        seg.el.setAttribute("aria-current", "true");
        follow(view, seg.el);
      }
      view.nowSeg = seg;
    }
  }

  /** Keep the current segment in view, unless the reader scrolled away a moment ago. */
  function follow(view, target) {
    if (!ui.followInput.checked || Date.now() - view.lastUser < FOLLOW_PAUSE_MS) return;
    scrollIntoBox(ui.transcript, target);
  }

  function tick() {
    const player = store.view?.player;
    if (!player || player.paused || player.ended) return;
    highlight();
    requestAnimationFrame(tick);
  }

  function setUpTranscript() {
    const box = ui.transcript;
    box.addEventListener("click", (e) => {
      const time = e.target.closest(".seg-time");
      if (time) return seek(Number(time.dataset.start));
      const word = e.target.closest(".word");
      if (word && store.view) seek(store.view.words[Number(word.dataset.i)].start);
    });
    const userScroll = () => {
      if (store.view) store.view.lastUser = Date.now();
    };
    for (const type of ["wheel", "touchmove", "pointerdown"]) {
      box.addEventListener(type, userScroll, { passive: true });
    }
    box.addEventListener("keydown", (e) => {
      if (["ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"].includes(e.key)) userScroll();
    });
    ui.followInput.addEventListener("change", (e) => {
      if (e.target.checked && store.view) {
        store.view.lastUser = 0;
        highlight(true);
      }
    });
  }

  function setUpDownloads() {
    ui.downloads.addEventListener("click", async (e) => {
      const link = e.target.closest("a[data-format]");
      if (!link) return;
      // Fetch it ourselves so an API key goes in the header, never in the link.
      e.preventDefault();
      const response = await api.request(link.href).catch(() => null);
      if (!response || !response.ok) {
        ui.viewerStatus.textContent = response
          ? `Could not download: ${await problem(response)}`
          : "Could not download (connection lost).";
        return;
      }
      const url = URL.createObjectURL(await response.blob());
      const a = el("a", { href: url, download: link.getAttribute("download") });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      ui.viewerStatus.textContent = `Downloaded ${link.getAttribute("download")}.`;
    });
  }

  setUpTranscript();
  setUpDownloads();
  return { open, close, update };
}

/** The last item whose start is at or before t (items sorted by start). */
function lastStarted(items, t) {
  let lo = 0;
  let hi = items.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].start <= t + 1e-3) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}
