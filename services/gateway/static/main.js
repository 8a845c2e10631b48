/* vtx web page: upload media, follow jobs, read the transcript beside the player.
 * Plain JavaScript modules, no build step; it speaks only the public API under /v1.
 * This module only wires the others together: each gets what it uses, explicitly. */
import { createApi } from "./api.js";
import { elements, scrollIntoBox } from "./dom.js";
import { createJobs } from "./jobs.js";
import { createSearch } from "./search.js";
import { createSpeakers } from "./speakers.js";
import { createViewer } from "./viewer.js";

const ui = elements(document);
/** What the modules share: every job by id, and the job open in the viewer with its view. */
const store = { jobs: new Map(), current: null, view: null };

const api = createApi(ui);
const search = createSearch({
  ui,
  view: () => store.view,
  reveal: (target) => scrollIntoBox(ui.transcript, target),
});
const speakers = createSpeakers({ ui, api, store, remember: (job) => jobs.apply(job) });
const viewer = createViewer({
  ui,
  api,
  store,
  search,
  speakers,
  remember: (job) => jobs.apply(job),
  onShown: (id) => jobs.markCurrent(id),
});
// `viewer` and `jobs` call each other only later, from events: both exist by then.
const jobs = createJobs({
  ui,
  api,
  store,
  onChange: (job, before) => viewer.update(job, before),
  onGone: (id) => {
    if (store.current === id) viewer.close();
  },
  onUploaded: (job) => {
    if (!store.current) location.hash = `job=${job.id}`;
  },
});

function route({ focus = true } = {}) {
  const match = /^#job=([0-9a-f]{32})$/.exec(location.hash);
  if (match) viewer.open(match[1], { focus });
  else if (store.current) viewer.close();
}

api.setKey(api.key());
ui.closeButton.addEventListener("click", () => {
  const id = store.current;
  viewer.close();
  (jobs.link(id) || ui.fileInput).focus();
});
ui.keyButton.addEventListener("click", () => {
  api.setKey("");
  ui.jobsStatus.textContent = "The API key was removed from this browser.";
});
window.addEventListener("hashchange", () => route());
jobs.load({ reset: true }).then(() => {
  route({ focus: false });
  jobs.follow();
});
