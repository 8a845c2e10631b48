/* The job list: a card per job, uploads queued a few at a time, and every unfinished job
 * followed through one event stream for the whole list (or by polling the list, where
 * that stream cannot be had). One stream per job would take the browser's six
 * connections to the server and leave the page's own requests waiting behind them. */
import { detailOf, problem } from "./api.js";
import { el, sleep } from "./dom.js";
import { bytes, clock, describe, finished, jobName, setBar, when } from "./format.js";

const PAGE_SIZE = 20;
const POLL_MS = 700;
const POLL_HIDDEN_MS = 3000;
const RECONNECT_MS = 2000; // the server's `retry` for its event streams
const STREAM_RETRY_MS = 30_000; // refused a stream (e.g. 429): poll this long, then ask again
const UPLOADS_AT_ONCE = 3;
const UPLOAD_WAIT_MS = 30 * 60 * 1000; // an upload refused with 429 is retried this long
const UPLOAD_RETRY_MAX_S = 300;
const RANK = { queued: 0, splitting: 1, transcribing: 2, completed: 3, failed: 3 };

/** The list in `ui`, over `api`, keeping each job in `store.jobs`. `onChange(job, before)`
 * runs after every change of a job, `onGone(id)` when one is deleted, `onUploaded(job)`
 * when an upload became a job. */
export function createJobs({ ui, api, store, onChange, onGone, onUploaded }) {
  const cards = new Map(); // id -> the parts of its <li>
  const page = { total: 0, loaded: 0 };
  const uploads = { waiting: [], running: 0 };
  let mentioned = null; // ids the open stream spoke of before its `ready`

  /* ---------------------------------------------------------------- cards */
  function cardOf(job) {
    let card = cards.get(job.id);
    if (!card) {
      card = newCard(job.id);
      card.remove.addEventListener("click", () => remove(store.jobs.get(job.id)));
      cards.set(job.id, card);
    }
    const name = jobName(job);
    card.name.textContent = name;
    card.remove.setAttribute("aria-label", `Delete ${name}`);
    card.badge.textContent = job.status;
    card.badge.className = `badge ${job.status}`;
    const media = job.media || {};
    const facts = [
      when(job.created_at),
      media.duration_seconds ? clock(media.duration_seconds) : "",
      bytes(job.size_bytes),
    ];
    card.meta.textContent = facts.filter(Boolean).join(" · ");
    card.row.hidden = job.status === "failed";
    setBar(card.bar, job);
    const words = describe(job);
    if (card.text.textContent !== words) card.text.textContent = words;
    card.error.hidden = job.status !== "failed";
    const message = job.error || "The job failed.";
    if (job.status === "failed" && card.error.textContent !== message) card.error.textContent = message;
    card.item.dataset.status = job.status;
    card.item.classList.toggle("current", store.current === job.id);
    return card;
  }

  /** A state older than the one shown (a list read before an event came) is dropped. */
  function behind(job, before) {
    const now = RANK[job.status] ?? 0;
    const then = RANK[before.status] ?? 0;
    if (now !== then) return now < then;
    return (job.progress?.chunks_done || 0) < (before.progress?.chunks_done || 0);
  }

  function apply(job) {
    const before = store.jobs.get(job.id);
    if (before && behind(job, before)) return;
    store.jobs.set(job.id, job);
    cardOf(job);
    if (before && !finished(before) && finished(job)) {
      ui.jobsStatus.textContent =
        job.status === "completed" ? `${jobName(job)}: transcript ready.` : `${jobName(job)} failed.`;
    }
    onChange(job, before);
  }

  function show(job) {
    const { item } = cardOf(job);
    if (!item.isConnected) ui.jobList.append(item);
    ui.jobsEmpty.hidden = true;
  }

  /** A job the list did not have (an upload, or one started elsewhere): in its place by
   * age, unless it belongs to a page of older jobs not loaded yet. */
  function add(job) {
    if (store.jobs.has(job.id)) return apply(job);
    const age = (j) => Date.parse(j?.created_at || "") || 0;
    const shown = [...ui.jobList.children];
    const newer = shown.filter((item) => age(store.jobs.get(item.dataset.id)) >= age(job));
    const after = newer.at(-1);
    if (after && after === shown.at(-1) && page.loaded < page.total) return;
    page.total += 1;
    page.loaded += 1;
    apply(job);
    const { item } = cardOf(job);
    if (after) after.after(item);
    else ui.jobList.prepend(item);
    ui.jobsEmpty.hidden = true;
    ui.moreButton.hidden = page.loaded >= page.total;
  }

  function markCurrent(id) {
    for (const [other, card] of cards) card.item.classList.toggle("current", other === id);
  }

  function link(id) {
    return cards.get(id)?.name || null;
  }

  /* ---------------------------------------------------------------- the list */
  async function load({ reset = false } = {}) {
    const offset = reset ? 0 : page.loaded;
    let response;
    try {
      response = await api.request(`/v1/jobs?limit=${PAGE_SIZE}&offset=${offset}`);
    } catch {
      ui.jobsStatus.textContent = "The server cannot be reached. Check your connection and press Refresh.";
      return;
    }
    if (!response.ok) {
      ui.jobsStatus.textContent = `Could not list jobs: ${await problem(response)}`;
      return;
    }
    const listed = await response.json();
    if (reset) {
      const keep = new Set(listed.items.map((j) => j.id));
      for (const [id, card] of cards) {
        if (!keep.has(id) && id !== store.current) {
          card.item.remove();
          cards.delete(id);
        }
      }
      ui.jobList.replaceChildren();
    }
    for (const job of listed.items) {
      apply(job);
      show(job);
    }
    page.loaded = offset + listed.items.length;
    page.total = listed.total;
    ui.moreButton.hidden = page.loaded >= page.total;
    ui.jobsEmpty.hidden = page.total > 0;
    if (reset) ui.jobsStatus.textContent = "";
  }

  async function remove(job) {
    if (!job) return;
    if (!window.confirm(`Delete “${jobName(job)}”, its media and its transcript?`)) return;
    const response = await api.request(`/v1/jobs/${job.id}`, { method: "DELETE" });
    if (response.status !== 204 && response.status !== 404) {
      ui.jobsStatus.textContent = `Could not delete ${jobName(job)}: ${await problem(response)}`;
      return;
    }
    forget(job.id);
    ui.jobsStatus.textContent = `Deleted ${jobName(job)}.`;
    ui.refreshButton.focus();
  }

  function forget(id) {
    if (!store.jobs.has(id)) return;
    store.jobs.delete(id);
    cards.get(id)?.item.remove();
    cards.delete(id);
    page.total = Math.max(0, page.total - 1);
    page.loaded = Math.max(0, page.loaded - 1);
    ui.jobsEmpty.hidden = cards.size > 0;
    onGone(id);
  }

  /* ------------------------------------------------------------ following */
  /** Follow every unfinished job for as long as the page is open: one event stream for
   * all of them, reopened when it ends; polling while it cannot be had. */
  async function follow() {
    let streams = true;
    for (;;) {
      if (streams) {
        mentioned = new Set();
        const result = await api.stream("/v1/events", onEvent);
        mentioned = null;
        if (result.status === 404 || result.status === 405) streams = false; // an older server
        await pollFor(result.ok ? RECONNECT_MS : STREAM_RETRY_MS);
      } else await pollFor(STREAM_RETRY_MS);
    }
  }

  async function onEvent(name, data) {
    let payload = null;
    try {
      payload = JSON.parse(data);
    } catch {
      return;
    }
    if (name === "ready") {
      const spoken = mentioned;
      mentioned = null;
      if (spoken) await catchUp(spoken);
      return;
    }
    if (!payload || typeof payload.id !== "string") return;
    mentioned?.add(payload.id);
    if (name === "deleted") forget(payload.id);
    else if (typeof payload.status === "string") add(payload);
  }

  /** Jobs the page shows unfinished that the stream's first states did not include ended
   * before it opened: read each once. */
  async function catchUp(spoken) {
    for (const job of [...store.jobs.values()]) {
      if (!finished(job) && !spoken.has(job.id)) await refetch(job.id);
    }
  }

  async function refetch(id) {
    const response = await api.request(`/v1/jobs/${id}`).catch(() => null);
    if (response?.status === 404) forget(id);
    else if (response?.ok) apply(await response.json());
  }

  /** Poll the list for `ms` (only while some job is unfinished): one request a round. */
  async function pollFor(ms) {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const open = [...store.jobs.values()].filter((job) => !finished(job));
      if (open.length) await pollOnce(open);
      await sleep(Math.min(document.hidden ? POLL_HIDDEN_MS : POLL_MS, Math.max(0, until - Date.now())));
    }
  }

  async function pollOnce(open) {
    const limit = Math.min(200, Math.max(PAGE_SIZE, page.loaded));
    const response = await api.request(`/v1/jobs?limit=${limit}&offset=0`).catch(() => null);
    if (!response?.ok) return;
    const listed = await response.json();
    const seen = new Set(listed.items.map((job) => job.id));
    for (const job of listed.items) add(job);
    for (const job of open) if (!seen.has(job.id)) await refetch(job.id);
  }

  /* --------------------------------------------------------------- uploads */
  function uploadFiles(files) {
    const chosen = [...files];
    if (!chosen.length) return;
    const options = {
      language: ui.languageInput.value.trim(),
      hotwords: ui.hotwordsInput.value.trim(),
      speakers: ui.speakersInput.value || undefined,
      vad: ui.noVadInput.checked ? false : undefined,
    };
    ui.jobsStatus.textContent =
      chosen.length === 1
        ? `Uploading ${chosen[0].name}…`
        : chosen.length > UPLOADS_AT_ONCE
          ? `Uploading ${chosen.length} files, ${UPLOADS_AT_ONCE} at a time…`
          : `Uploading ${chosen.length} files…`;
    for (const file of chosen) {
      const card = uploadCard(file);
      ui.uploadList.prepend(card.item);
      uploads.waiting.push({ file, options, card });
    }
    pump();
  }

  /** Start waiting uploads while fewer than UPLOADS_AT_ONCE are under way. */
  function pump() {
    while (uploads.running < UPLOADS_AT_ONCE && uploads.waiting.length) {
      const next = uploads.waiting.shift();
      uploads.running += 1;
      uploadOne(next).finally(() => {
        uploads.running -= 1;
        pump();
      });
    }
  }

  async function uploadOne({ file, options, card }) {
    card.setUploading();
    const progress = (pct) => {
      card.bar.value = pct;
      card.text.textContent = pct >= 100 ? "Checking the file…" : `Uploading ${Math.round(pct)}%`;
    };
    let result = await api.upload(file, options, progress);
    if (result.status === 401 && (await api.askForKey(Boolean(api.key())))) {
      result = await api.upload(file, options, progress);
    }
    const giveUpAt = Date.now() + UPLOAD_WAIT_MS;
    while (result.status === 429 && Date.now() < giveUpAt) {
      await waitOut(card, result, giveUpAt);
      result = await api.upload(file, options, progress);
    }
    if (result.status === 202) {
      card.item.remove();
      const job = JSON.parse(result.text);
      add(job);
      ui.jobsStatus.textContent = `${file.name} uploaded; transcription has started.`;
      onUploaded(job);
      return;
    }
    refuse(card, file, result);
  }

  /** A 429 (the key's jobs or audio in flight are at their limit, or too many requests):
   * say why on the card and wait as long as Retry-After asks, within the page's bound. */
  async function waitOut(card, result, giveUpAt) {
    card.badge.textContent = "waiting";
    card.badge.className = "badge waiting";
    card.bar.removeAttribute("value");
    card.text.textContent = `waiting: ${detailOf(result.text)}`;
    const asked = /^[0-9]{1,6}$/.test(result.retryAfter || "") ? Number(result.retryAfter) : 5;
    const seconds = Math.min(Math.max(asked, 1), UPLOAD_RETRY_MAX_S);
    await sleep(Math.max(0, Math.min(seconds * 1000, giveUpAt - Date.now())));
    card.setUploading();
  }

  function refuse(card, file, result) {
    let detail = detailOf(result.text);
    if (!detail) {
      detail = result.status
        ? `The server answered ${result.status}.`
        : "The upload did not reach the server (connection lost, or the file is larger than it accepts).";
    }
    card.badge.textContent = "refused";
    card.badge.className = "badge refused";
    card.row.remove();
    const message = el("p", { class: "error-box", role: "alert" });
    message.textContent = `${file.name} was refused: ${detail}`;
    const dismiss = el("button", {
      type: "button",
      class: "small",
      text: "Dismiss",
      "aria-label": `Dismiss the message about ${file.name}`,
    });
    dismiss.addEventListener("click", () => {
      card.item.remove();
      ui.fileInput.focus();
    });
    card.item.classList.add("refused");
    card.item.append(message, el("div", { class: "job-actions" }, dismiss));
    ui.jobsStatus.textContent = `${file.name} was refused.`;
  }

  function setUpDropzone() {
    const input = ui.fileInput;
    input.addEventListener("change", () => {
      uploadFiles(input.files);
      input.value = "";
    });
    let depth = 0;
    const dragging = (on) => ui.uploadForm.classList.toggle("dragging", on);
    const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
    // The whole window accepts drops, so a near miss never opens the file in the tab.
    window.addEventListener("dragenter", (e) => {
      if (!carriesFiles(e)) return;
      depth += 1;
      dragging(true);
    });
    window.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) dragging(false);
    });
    window.addEventListener("dragover", (e) => {
      if (carriesFiles(e)) e.preventDefault();
    });
    window.addEventListener("drop", (e) => {
      if (!e.dataTransfer?.files?.length) return;
      e.preventDefault();
      depth = 0;
      dragging(false);
      uploadFiles(e.dataTransfer.files);
    });
    ui.uploadForm.addEventListener("submit", (e) => e.preventDefault());
  }

  setUpDropzone();
  ui.refreshButton.addEventListener("click", () => load({ reset: true }));
  ui.moreButton.addEventListener("click", () => load());
  return { load, follow, apply, add, markCurrent, link };
}

/** The <li> of a job and its parts, so nothing needs finding again. */
function newCard(id) {
  const label = `progress-${id}`;
  const card = {
    name: el("a", { class: "job-name", href: `#job=${id}` }),
    badge: el("span", { class: "badge" }),
    meta: el("p", { class: "job-meta" }),
    bar: el("progress", { max: "100", "aria-labelledby": label }),
    text: el("span", { class: "progress-text", id: label, role: "status", "aria-live": "polite" }),
    error: el("p", { class: "error-box", role: "alert", hidden: true }),
    remove: el("button", { type: "button", class: "small danger job-delete", text: "Delete" }),
  };
  card.row = el("div", { class: "progress-row" }, card.bar, card.text);
  card.item = el(
    "li",
    { class: "job", "data-id": id },
    el("div", { class: "job-top" }, card.name, card.badge),
    card.meta,
    card.row,
    card.error,
    el("div", { class: "job-actions" }, card.remove),
  );
  return card;
}

/** The <li> of an upload: queued on this page until one of the few upload slots is free. */
function uploadCard(file) {
  const card = {
    badge: el("span", { class: "badge queued", text: "queued" }),
    bar: el("progress", { max: "100", "aria-label": `Upload of ${file.name}` }),
    text: el("span", { class: "progress-text", text: "Queued on this page" }),
  };
  card.row = el("div", { class: "progress-row" }, card.bar, card.text);
  card.item = el(
    "li",
    { class: "job upload", "data-upload": file.name },
    el("div", { class: "job-top" }, el("span", { class: "job-name", text: file.name }), card.badge),
    el("p", { class: "job-meta", text: bytes(file.size) }),
    card.row,
  );
  card.setUploading = () => {
    card.badge.textContent = "uploading";
    card.badge.className = "badge";
    card.bar.value = 0;
    card.text.textContent = "Uploading 0%";
  };
  return card;
}
