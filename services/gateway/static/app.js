/* vtx web page: upload media, follow jobs, read the transcript beside the player.
 * Plain JavaScript, no build step. It speaks only the public API under /v1.
 * An API key (if the server wants one) lives in localStorage and travels only in
 * the Authorization header, never in a URL. */
"use strict";

const KEY_STORAGE = "vtx.apiKey";
const PAGE_SIZE = 20;
const POLL_MS = 700;
const POLL_HIDDEN_MS = 3000;
const FOLLOW_PAUSE_MS = 4000;

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const state = {
  jobs: new Map(), // id -> job as the API returns it
  items: new Map(), // id -> <li> in the job list
  watchers: new Set(), // ids being followed
  total: 0,
  loaded: 0,
  events: null, // null: unknown, true/false: whether /v1/jobs/{id}/events exists
  current: null, // the job open in the viewer
  view: null, // {id, words, segments, player, ...}
};

/* ---------------------------------------------------------------- API key */
function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: the key lasts for this page only */
  }
  $("#key-button").hidden = !key;
}

let keyPrompt = null;
/** Ask once for a key, however many requests were refused at the same time. */
function askForKey(refused) {
  if (keyPrompt) return keyPrompt;
  const dialog = $("#key-dialog");
  const input = $("#key-input");
  $("#key-error").textContent = refused ? "The server refused the key that was saved." : "";
  input.value = "";
  keyPrompt = new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        keyPrompt = null;
        const key = input.value.trim();
        if (dialog.returnValue === "save" && key) {
          setApiKey(key);
          resolve(true);
        } else resolve(false);
      },
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
  return keyPrompt;
}

function authHeaders(headers = {}) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

/** fetch() with the key; on 401 ask for one and try again until the user gives up. */
async function api(path, options = {}) {
  for (;;) {
    const sent = apiKey();
    const response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
    if (response.status !== 401) return response;
    if (!(await askForKey(Boolean(sent)))) return response;
  }
}

/** The server's own words for a refusal: `detail` of an error body, else the status. */
async function problem(response) {
  let detail = "";
  try {
    const text = await response.text();
    try {
      detail = describeDetail(JSON.parse(text).detail);
    } catch {
      detail = text.slice(0, 300);
    }
  } catch {
    /* body unreadable */
  }
  return detail || `${response.status} ${response.statusText || "error"}`;
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return detail ? JSON.stringify(detail) : "";
}

/* ------------------------------------------------------------- formatting */
function clock(seconds, withMs = false) {
  const s = Math.max(0, seconds || 0);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  const pad = (n) => String(n).padStart(2, "0");
  let out = h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
  if (withMs) out += `.${String(Math.floor((s % 1) * 10))}`;
  return out;
}

function bytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ""
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function finished(job) {
  return job.status === "completed" || job.status === "failed";
}

function jobName(job) {
  return job.filename || `Job ${job.id.slice(0, 8)}`;
}

/** Status in words, for the list, the viewer and screen readers. */
function describe(job) {
  const p = job.progress || {};
  switch (job.status) {
    case "queued":
      return "Waiting in the queue";
    case "splitting":
      return "Preparing the audio";
    case "transcribing": {
      const chunks = p.chunks_total ? ` · ${p.chunks_done} of ${p.chunks_total} parts` : "";
      const eta = p.eta_seconds ? ` · about ${clock(p.eta_seconds)} left` : "";
      return `Transcribing ${Math.round(p.percent || 0)}%${chunks}${eta}`;
    }
    case "completed":
      return "Transcript ready";
    case "failed":
      return "Failed";
    default:
      return job.status;
  }
}

/** Fill a <progress>: indeterminate until chunks are known, 100 when done. */
function setBar(bar, job) {
  const p = job.progress || {};
  bar.classList.toggle("failed", job.status === "failed");
  bar.classList.toggle("done", job.status === "completed");
  if (job.status === "completed") bar.value = 100;
  else if (job.status === "transcribing" || p.percent > 0) bar.value = p.percent || 0;
  else bar.removeAttribute("value"); // indeterminate
  bar.dataset.percent = job.status === "completed" ? "100" : String(p.percent || 0);
}

/* -------------------------------------------------------------- job list */
function jobItem(job) {
  let item = state.items.get(job.id);
  if (!item) {
    const label = `progress-${job.id}`;
    item = el(
      "li",
      { class: "job", "data-id": job.id },
      el(
        "div",
        { class: "job-top" },
        el("a", { class: "job-name", href: `#job=${job.id}` }),
        el("span", { class: "badge" }),
      ),
      el("p", { class: "job-meta" }),
      el(
        "div",
        { class: "progress-row" },
        el("progress", { max: "100", "aria-labelledby": label }),
        el("span", { class: "progress-text", id: label, role: "status", "aria-live": "polite" }),
      ),
      el("p", { class: "error-box", role: "alert", hidden: true }),
      el(
        "div",
        { class: "job-actions" },
        el("button", { type: "button", class: "small danger job-delete", text: "Delete" }),
      ),
    );
    $(".job-delete", item).addEventListener("click", () => deleteJob(state.jobs.get(job.id)));
    state.items.set(job.id, item);
  }
  const name = jobName(job);
  $(".job-name", item).textContent = name;
  $(".job-delete", item).setAttribute("aria-label", `Delete ${name}`);
  const badge = $(".badge", item);
  badge.textContent = job.status;
  badge.className = `badge ${job.status}`;
  const media = job.media || {};
  const facts = [
    when(job.created_at),
    media.duration_seconds ? clock(media.duration_seconds) : "",
    bytes(job.size_bytes),
  ];
  $(".job-meta", item).textContent = facts.filter(Boolean).join(" · ");
  const row = $(".progress-row", item);
  row.hidden = job.status === "failed";
  setBar($("progress", row), job);
  const text = $(".progress-text", row);
  const words = describe(job);
  if (text.textContent !== words) text.textContent = words;
  const error = $(".error-box", item);
  error.hidden = job.status !== "failed";
  const message = job.error || "The job failed.";
  if (job.status === "failed" && error.textContent !== message) error.textContent = message;
  item.dataset.status = job.status;
  item.classList.toggle("current", state.current === job.id);
  return item;
}

function applyJob(job) {
  const before = state.jobs.get(job.id);
  state.jobs.set(job.id, job);
  jobItem(job);
  if (before && !finished(before) && finished(job)) {
    $("#jobs-status").textContent =
      job.status === "completed" ? `${jobName(job)}: transcript ready.` : `${jobName(job)} failed.`;
  }
  if (state.current === job.id) updateViewer(job, before);
}

function showJobInList(job, { top = false } = {}) {
  const list = $("#job-list");
  const item = jobItem(job);
  if (top) list.prepend(item);
  else if (!item.isConnected) list.append(item);
  $("#jobs-empty").hidden = true;
}

async function loadJobs({ reset = false } = {}) {
  const status = $("#jobs-status");
  const offset = reset ? 0 : state.loaded;
  let response;
  try {
    response = await api(`/v1/jobs?limit=${PAGE_SIZE}&offset=${offset}`);
  } catch {
    status.textContent = "The server cannot be reached. Check your connection and press Refresh.";
    return;
  }
  if (!response.ok) {
    status.textContent = `Could not list jobs: ${await problem(response)}`;
    return;
  }
  const page = await response.json();
  if (reset) {
    const keep = new Set(page.items.map((j) => j.id));
    for (const [id, item] of state.items) {
      if (!keep.has(id) && id !== state.current) {
        item.remove();
        state.items.delete(id);
      }
    }
    $("#job-list").replaceChildren();
    state.loaded = 0;
  }
  for (const job of page.items) {
    applyJob(job);
    showJobInList(job);
    if (!finished(job)) watch(job.id);
  }
  state.loaded = offset + page.items.length;
  state.total = page.total;
  $("#more-button").hidden = state.loaded >= state.total;
  $("#jobs-empty").hidden = state.total > 0;
  status.textContent = reset ? "" : status.textContent;
}

async function deleteJob(job) {
  if (!job) return;
  if (!window.confirm(`Delete “${jobName(job)}”, its media and its transcript?`)) return;
  const status = $("#jobs-status");
  const response = await api(`/v1/jobs/${job.id}`, { method: "DELETE" });
  if (response.status !== 204 && response.status !== 404) {
    status.textContent = `Could not delete ${jobName(job)}: ${await problem(response)}`;
    return;
  }
  forgetJob(job.id);
  status.textContent = `Deleted ${jobName(job)}.`;
  $("#refresh-button").focus();
}

function forgetJob(id) {
  state.watchers.delete(id);
  state.jobs.delete(id);
  const item = state.items.get(id);
  if (item) item.remove();
  state.items.delete(id);
  state.total = Math.max(0, state.total - 1);
  state.loaded = Math.max(0, state.loaded - 1);
  $("#jobs-empty").hidden = state.items.size > 0;
  if (state.current === id) closeViewer();
}

/* ------------------------------------------------------------ following */
/** Follow a job until it finishes: server-sent events if the server has them, else polling. */
function watch(id) {
  if (state.watchers.has(id)) return;
  state.watchers.add(id);
  (async () => {
    try {
      if (state.events !== false && (await followEvents(id))) return;
      await poll(id);
    } finally {
      state.watchers.delete(id);
    }
  })();
}

async function poll(id) {
  while (state.watchers.has(id)) {
    let response;
    try {
      response = await api(`/v1/jobs/${id}`);
    } catch {
      await sleep(POLL_HIDDEN_MS);
      continue;
    }
    if (response.status === 404) {
      forgetJob(id);
      return;
    }
    if (response.ok) {
      const job = await response.json();
      applyJob(job);
      if (finished(job)) return;
    }
    await sleep(document.hidden ? POLL_HIDDEN_MS : POLL_MS);
  }
}

/** Read `/v1/jobs/{id}/events` through fetch (so the key can ride in a header).
 * Returns true once the job has finished; false to fall back to polling. */
async function followEvents(id) {
  let response;
  try {
    response = await api(`/v1/jobs/${id}/events`, { headers: { Accept: "text/event-stream" } });
  } catch {
    return false;
  }
  const type = response.headers.get("content-type") || "";
  if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
    if (response.status === 404 || response.status === 405) state.events = false;
    return false;
  }
  state.events = true;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (state.watchers.has(id)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data && (await onEvent(id, data))) return true;
      }
    }
  } catch {
    /* the stream broke: polling takes over */
  } finally {
    reader.cancel().catch(() => {});
  }
  return false;
}

/** An event carries the job (or part of it); anything else is a cue to fetch it. */
async function onEvent(id, data) {
  let payload = null;
  try {
    payload = JSON.parse(data);
  } catch {
    /* not JSON */
  }
  let job;
  if (payload && typeof payload === "object" && typeof payload.status === "string") {
    job = { ...(state.jobs.get(id) || {}), ...payload, id };
    if (payload.progress) job.progress = { ...(state.jobs.get(id)?.progress || {}), ...payload.progress };
  } else {
    const response = await api(`/v1/jobs/${id}`);
    if (!response.ok) return false;
    job = await response.json();
  }
  applyJob(job);
  return finished(job);
}

/* --------------------------------------------------------------- uploads */
function uploadFiles(files) {
  const list = [...files];
  if (!list.length) return;
  $("#jobs-status").textContent =
    list.length === 1 ? `Uploading ${list[0].name}…` : `Uploading ${list.length} files…`;
  for (const file of list) uploadFile(file);
}

function send(file, language, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/jobs");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", () => resolve({ status: xhr.status, text: xhr.responseText }));
    xhr.addEventListener("error", () => resolve({ status: 0, text: "" }));
    xhr.addEventListener("abort", () => resolve({ status: 0, text: "" }));
    const form = new FormData();
    if (language) form.append("language", language);
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

async function uploadFile(file) {
  const item = el(
    "li",
    { class: "job upload", "data-upload": file.name },
    el(
      "div",
      { class: "job-top" },
      el("span", { class: "job-name", text: file.name }),
      el("span", { class: "badge", text: "uploading" }),
    ),
    el("p", { class: "job-meta", text: bytes(file.size) }),
    el(
      "div",
      { class: "progress-row" },
      el("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` }),
      el("span", { class: "progress-text", text: "Uploading 0%" }),
    ),
  );
  $("#upload-list").prepend(item);
  const bar = $("progress", item);
  const text = $(".progress-text", item);
  const language = $("#language-input").value.trim();
  const progress = (pct) => {
    bar.value = pct;
    text.textContent = pct >= 100 ? "Checking the file…" : `Uploading ${Math.round(pct)}%`;
  };
  let result = await send(file, language, progress);
  if (result.status === 401 && (await askForKey(Boolean(apiKey())))) {
    result = await send(file, language, progress);
  }
  if (result.status === 202) {
    item.remove();
    const job = JSON.parse(result.text);
    applyJob(job);
    showJobInList(job, { top: true });
    state.total += 1;
    state.loaded += 1;
    $("#jobs-status").textContent = `${file.name} uploaded; transcription has started.`;
    watch(job.id);
    if (!state.current) location.hash = `job=${job.id}`;
    return;
  }
  refuse(item, file, result);
}

function refuse(item, file, result) {
  let detail = "";
  try {
    detail = describeDetail(JSON.parse(result.text).detail);
  } catch {
    detail = (result.text || "").slice(0, 300);
  }
  if (!detail) {
    detail = result.status
      ? `The server answered ${result.status}.`
      : "The upload did not reach the server (connection lost, or the file is larger than it accepts).";
  }
  const badge = $(".badge", item);
  badge.textContent = "refused";
  badge.className = "badge refused";
  $(".progress-row", item).remove();
  const message = el("p", { class: "error-box", role: "alert" });
  message.textContent = `${file.name} was refused: ${detail}`;
  const dismiss = el("button", {
    type: "button",
    class: "small",
    text: "Dismiss",
    "aria-label": `Dismiss the message about ${file.name}`,
  });
  dismiss.addEventListener("click", () => {
    item.remove();
    $("#file-input").focus();
  });
  item.classList.add("refused");
  item.append(message, el("div", { class: "job-actions" }, dismiss));
  $("#jobs-status").textContent = `${file.name} was refused.`;
}

function setUpDropzone() {
  const form = $("#upload-form");
  const input = $("#file-input");
  input.addEventListener("change", () => {
    uploadFiles(input.files);
    input.value = "";
  });
  let depth = 0;
  const dragging = (on) => form.classList.toggle("dragging", on);
  // The whole window accepts drops, so a near miss never opens the file in the tab.
  window.addEventListener("dragenter", (e) => {
    if (![...(e.dataTransfer?.types || [])].includes("Files")) return;
    depth += 1;
    dragging(true);
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) dragging(false);
  });
  window.addEventListener("dragover", (e) => {
    if ([...(e.dataTransfer?.types || [])].includes("Files")) e.preventDefault();
  });
  window.addEventListener("drop", (e) => {
    if (!e.dataTransfer?.files?.length) return;
    e.preventDefault();
    depth = 0;
    dragging(false);
    uploadFiles(e.dataTransfer.files);
  });
  form.addEventListener("submit", (e) => e.preventDefault());
}

/* ---------------------------------------------------------------- viewer */
function closeViewer() {
  if (state.view?.player) {
    state.view.player.pause();
    state.view.player.removeAttribute("src");
    state.view.player.load();
  }
  if (state.view?.blobUrl) URL.revokeObjectURL(state.view.blobUrl);
  const previous = state.current;
  state.current = null;
  state.view = null;
  if (previous && state.items.get(previous)) state.items.get(previous).classList.remove("current");
  $("#viewer-job").hidden = true;
  $("#viewer-empty").hidden = false;
  if (location.hash.startsWith("#job=")) history.replaceState(null, "", location.pathname);
}

async function openJob(id, { focus = true } = {}) {
  if (state.current === id) return;
  if (state.current) closeViewer();
  let job = state.jobs.get(id);
  if (!job) {
    const response = await api(`/v1/jobs/${id}`).catch(() => null);
    if (!response || !response.ok) {
      $("#jobs-status").textContent = response
        ? `Cannot open that job: ${await problem(response)}`
        : "The server cannot be reached.";
      history.replaceState(null, "", location.pathname);
      return;
    }
    job = await response.json();
    applyJob(job);
  }
  state.current = id;
  state.view = { id, words: [], segments: [], matches: [], match: -1, lastUser: 0 };
  for (const [other, item] of state.items) item.classList.toggle("current", other === id);
  $("#viewer-empty").hidden = true;
  $("#viewer-job").hidden = false;
  $("#viewer-title").textContent = jobName(job);
  const media = job.media || {};
  $("#viewer-meta").textContent = [
    media.duration_seconds ? clock(media.duration_seconds) : "",
    media.has_video ? "video" : "audio",
    bytes(job.size_bytes),
    when(job.created_at),
  ]
    .filter(Boolean)
    .join(" · ");
  mountPlayer(job);
  for (const link of document.querySelectorAll("#downloads a")) {
    const format = link.dataset.format;
    link.href = `/v1/jobs/${id}/transcript?format=${format}`;
    link.setAttribute("download", `${baseName(job)}.${format}`);
  }
  $("#transcript").replaceChildren();
  resetSearch(true);
  updateViewer(job, null);
  if (!finished(job)) watch(id);
  if (focus) $("#viewer").focus({ preventScroll: window.innerWidth > 760 });
  if (focus && window.innerWidth <= 760) $("#viewer").scrollIntoView({ block: "start" });
}

function baseName(job) {
  const name = (job.filename || job.id).replace(/\.[^.]+$/, "");
  return name.replace(/[\\/:*?"<>|]+/g, "_") || job.id;
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
    if (retried || !apiKey() || state.view?.player !== player) return;
    retried = true;
    const response = await api(mediaUrl(job)).catch(() => null);
    if (!response || !response.ok || state.view?.player !== player) return;
    const url = URL.createObjectURL(await response.blob());
    state.view.blobUrl = url;
    player.src = url;
  });
  player.addEventListener("timeupdate", () => highlight());
  player.addEventListener("seeked", () => highlight(true));
  player.addEventListener("play", () => tick());
  $("#player-box").replaceChildren(player);
  state.view.player = player;
}

function updateViewer(job, before) {
  const row = $("#viewer-progress");
  row.hidden = finished(job);
  setBar($("#viewer-bar"), job);
  const text = describe(job);
  if ($("#viewer-progress-text").textContent !== text) $("#viewer-progress-text").textContent = text;
  const error = $("#viewer-error");
  error.hidden = job.status !== "failed";
  if (job.status === "failed") {
    error.textContent = `This job failed: ${job.error || "no reason was given."}`;
    $("#viewer-status").textContent = "";
    transcriptNote("There is no transcript, because the job failed.");
  }
  $("#downloads").hidden = job.status !== "completed";
  if (job.status === "completed") {
    if (!before || before.status !== "completed" || !state.view.loaded) loadTranscript(job.id);
  } else if (job.status !== "failed" && !$("#transcript .transcript-note")) {
    transcriptNote("The transcript appears here as soon as the job is done.");
  }
}

function transcriptNote(text) {
  $("#transcript").replaceChildren(el("p", { class: "transcript-note", text }));
}

/* ------------------------------------------------------------ transcript */
async function loadTranscript(id) {
  const view = state.view;
  if (!view || view.id !== id || view.loading) return;
  view.loading = true;
  const box = $("#transcript");
  box.setAttribute("aria-busy", "true");
  $("#viewer-status").textContent = "Loading the transcript…";
  try {
    const response = await api(`/v1/jobs/${id}/transcript?format=json`);
    if (state.view !== view) return;
    if (!response.ok) {
      $("#viewer-status").textContent = `Could not load the transcript: ${await problem(response)}`;
      return;
    }
    renderTranscript(await response.json());
    view.loaded = true;
    const n = view.words.length;
    $("#viewer-status").textContent = `Transcript loaded: ${view.segments.length} segments, ${n} words.`;
  } catch {
    $("#viewer-status").textContent = "Could not load the transcript (connection lost).";
  } finally {
    view.loading = false;
    box.setAttribute("aria-busy", "false");
  }
}

function renderTranscript(doc) {
  const view = state.view;
  const box = $("#transcript");
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
    const row = el("div", { class: "segment", "data-start": String(seg.start) }, time, text);
    fragment.append(row);
    view.segments.push({ start: seg.start, end: seg.end, el: row });
  }
  if (!view.segments.length) {
    transcriptNote("No speech was found in this file.");
  } else {
    box.replaceChildren(fragment);
    box.scrollTop = 0;
  }
  $("#search-input").disabled = !view.words.length;
  resetSearch(false);
  highlight(true);
}

function seek(seconds) {
  const player = state.view?.player;
  if (!player) return;
  player.currentTime = seconds;
  state.view.lastUser = 0; // follow playback again from the new place
  highlight(true);
  if (player.paused) player.play().catch(() => {});
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

function highlight(force = false) {
  const view = state.view;
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
      follow(seg.el);
    }
    view.nowSeg = seg;
  }
}

/** Keep the current segment in view, unless the reader scrolled away a moment ago. */
function follow(target) {
  const view = state.view;
  if (!$("#follow-input").checked || Date.now() - view.lastUser < FOLLOW_PAUSE_MS) return;
  scrollIntoBox(target);
}

function scrollIntoBox(target) {
  const box = $("#transcript");
  const b = box.getBoundingClientRect();
  const r = target.getBoundingClientRect();
  if (r.top >= b.top + 8 && r.bottom <= b.bottom - 8) return;
  const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  box.scrollTo({ top: box.scrollTop + (r.top - b.top) - b.height / 3, behavior: reduce ? "auto" : "smooth" });
}

function tick() {
  const player = state.view?.player;
  if (!player || player.paused || player.ended) return;
  highlight();
  requestAnimationFrame(tick);
}

function setUpTranscript() {
  const box = $("#transcript");
  box.addEventListener("click", (e) => {
    const time = e.target.closest(".seg-time");
    if (time) return seek(Number(time.dataset.start));
    const word = e.target.closest(".word");
    if (word && state.view) seek(state.view.words[Number(word.dataset.i)].start);
  });
  const userScroll = () => {
    if (state.view) state.view.lastUser = Date.now();
  };
  for (const type of ["wheel", "touchmove", "pointerdown"]) {
    box.addEventListener(type, userScroll, { passive: true });
  }
  box.addEventListener("keydown", (e) => {
    if (["ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"].includes(e.key)) userScroll();
  });
  $("#follow-input").addEventListener("change", (e) => {
    if (e.target.checked && state.view) {
      state.view.lastUser = 0;
      highlight(true);
    }
  });
}

/* ---------------------------------------------------------------- search */
function resetSearch(clear) {
  const view = state.view;
  if (view) {
    for (const m of view.matches || []) for (const w of m) w.el.classList.remove("match", "match-current");
    view.matches = [];
    view.match = -1;
  }
  if (clear) $("#search-input").value = "";
  $("#search-count").textContent = "";
  $("#search-prev").disabled = true;
  $("#search-next").disabled = true;
  if (!clear && $("#search-input").value.trim()) search();
}

function search() {
  const view = state.view;
  if (!view) return;
  for (const m of view.matches) for (const w of m) w.el.classList.remove("match", "match-current");
  view.matches = [];
  view.match = -1;
  const query = $("#search-input").value.trim().toLowerCase().replace(/\s+/g, " ");
  const count = $("#search-count");
  if (!query) {
    count.textContent = "";
    $("#search-prev").disabled = $("#search-next").disabled = true;
    return;
  }
  // One string of all words, with each character's word, so phrases match across words.
  let text = "";
  const owner = [];
  view.words.forEach((w, i) => {
    const piece = (i ? " " : "") + w.text.toLowerCase();
    text += piece;
    for (let k = 0; k < piece.length; k += 1) owner.push(i);
  });
  for (let at = text.indexOf(query); at >= 0; at = text.indexOf(query, at + 1)) {
    const first = owner[at + (text[at] === " " ? 1 : 0)];
    const last = owner[at + query.length - 1];
    const words = view.words.slice(first, last + 1);
    for (const w of words) w.el.classList.add("match");
    view.matches.push(words);
  }
  const n = view.matches.length;
  $("#search-prev").disabled = $("#search-next").disabled = n === 0;
  count.textContent = n ? `${n} match${n === 1 ? "" : "es"}` : "No matches";
  if (n) step(1);
}

function step(direction) {
  const view = state.view;
  if (!view || !view.matches.length) return;
  if (view.match >= 0) for (const w of view.matches[view.match]) w.el.classList.remove("match-current");
  const n = view.matches.length;
  view.match = view.match < 0 ? 0 : (view.match + direction + n) % n;
  const words = view.matches[view.match];
  for (const w of words) w.el.classList.add("match-current");
  view.lastUser = Date.now(); // reading a match: do not yank the view back to playback
  scrollIntoBox(words[0].el);
  $("#search-count").textContent = `${view.match + 1} of ${n}`;
}

function setUpSearch() {
  let timer = null;
  const input = $("#search-input");
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  $("#search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(timer);
    if (!state.view?.matches.length) search();
    else step(1);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.shiftKey) {
      e.preventDefault();
      step(-1);
    }
  });
  $("#search-prev").addEventListener("click", () => step(-1));
}

/* ------------------------------------------------------------- downloads */
function setUpDownloads() {
  $("#downloads").addEventListener("click", async (e) => {
    const link = e.target.closest("a[data-format]");
    if (!link) return;
    // Fetch it ourselves so an API key goes in the header, never in the link.
    e.preventDefault();
    const status = $("#viewer-status");
    const response = await api(link.href).catch(() => null);
    if (!response || !response.ok) {
      status.textContent = response
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
    status.textContent = `Downloaded ${link.getAttribute("download")}.`;
  });
}

/* ------------------------------------------------------------------ start */
function route({ focus = true } = {}) {
  const match = /^#job=([0-9a-f]{32})$/.exec(location.hash);
  if (match) openJob(match[1], { focus });
  else if (state.current) closeViewer();
}

function start() {
  setApiKey(apiKey());
  setUpDropzone();
  setUpTranscript();
  setUpSearch();
  setUpDownloads();
  $("#refresh-button").addEventListener("click", () => loadJobs({ reset: true }));
  $("#more-button").addEventListener("click", () => loadJobs());
  $("#close-button").addEventListener("click", () => {
    const id = state.current;
    closeViewer();
    const link = id && state.items.get(id) && $(".job-name", state.items.get(id));
    (link || $("#file-input")).focus();
  });
  $("#key-button").addEventListener("click", () => {
    setApiKey("");
    $("#jobs-status").textContent = "The API key was removed from this browser.";
  });
  window.addEventListener("hashchange", () => route());
  loadJobs({ reset: true }).then(() => route({ focus: false }));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
