/* Speakers in the open transcript: each label (S1, S2, ...) has a colour, a name and a
 * row in the legend, where the user renames it. A name is stored on the job
 * (PATCH /v1/jobs/{id}), so the downloads use it and every tab sees it; the
 * transcript keeps the labels, and the page shows the names in their place. */
import { problem } from "./api.js";
import { el } from "./dom.js";
import { clock } from "./format.js";

const COLOURS = 8; // app.css has .spk-1 to .spk-8; more speakers reuse them in turn
const NAME_CHARS = 64;

/** The colour class of a label: S1 -> spk-1, S9 -> spk-1 again. */
export function colourOf(label) {
  const n = Number(/^S([0-9]+)$/.exec(label || "")?.[1] || 0);
  return n ? `spk-${((n - 1) % COLOURS) + 1}` : "";
}

/** `store.view` holds the open transcript; `remember(job)` keeps the renamed job in the
 * list's store (and so in the next update of the viewer). */
export function createSpeakers({ ui, api, store, remember }) {
  function job() {
    return store.view ? store.jobs.get(store.view.id) : null;
  }

  function nameOf(label) {
    return job()?.speaker_names?.[label] || label;
  }

  /** A segment's speaker tag, or null for a transcript without speakers. */
  function tag(label) {
    if (!label) return null;
    return el("span", {
      class: `seg-speaker ${colourOf(label)}`,
      "data-speaker": label,
      text: nameOf(label),
    });
  }

  /** The legend of the transcript just rendered: labels in order of first appearance,
   * with how long each speaks. Hidden when the transcript has no speakers. */
  function show(doc) {
    const seconds = new Map();
    for (const seg of doc.segments || []) {
      if (!seg.speaker) continue;
      seconds.set(seg.speaker, (seconds.get(seg.speaker) || 0) + Math.max(0, seg.end - seg.start));
    }
    ui.speakersList.replaceChildren(...[...seconds].map(([label, s]) => row(label, s)));
    ui.speakers.hidden = seconds.size === 0;
  }

  function hide() {
    ui.speakers.hidden = true;
    ui.speakersList.replaceChildren();
  }

  function row(label, seconds) {
    const item = el("li", { class: `speaker ${colourOf(label)}`, "data-speaker": label });
    item.dataset.seconds = String(seconds);
    fill(item);
    return item;
  }

  function fill(item) {
    const label = item.dataset.speaker;
    const named = nameOf(label) !== label;
    item.replaceChildren(
      el("span", { class: "swatch", "aria-hidden": "true" }),
      el("span", { class: "speaker-name", text: nameOf(label) }),
      el("span", {
        class: "speaker-meta hint",
        text: `${named ? `${label} · ` : ""}${clock(Number(item.dataset.seconds))}`,
      }),
      el("button", {
        type: "button",
        class: "small speaker-rename",
        "aria-label": `Rename ${nameOf(label)}`,
        text: "Rename",
      }),
    );
  }

  function edit(item) {
    const label = item.dataset.speaker;
    const id = `speaker-name-${label}`;
    const input = el("input", {
      id,
      type: "text",
      maxlength: String(NAME_CHARS),
      autocomplete: "off",
      spellcheck: "false",
      placeholder: label,
    });
    input.value = job()?.speaker_names?.[label] || "";
    const form = el(
      "form",
      { class: "speaker-form" },
      el("label", { class: "visually-hidden", for: id, text: `Name of ${label}` }),
      input,
      el("button", { type: "submit", class: "small primary", text: "Save" }),
      el("button", { type: "button", class: "small speaker-cancel", text: "Cancel" }),
    );
    item.replaceChildren(el("span", { class: "swatch", "aria-hidden": "true" }), form);
    input.focus();
    input.select();
  }

  /** Store one name (an empty one forgets it), then show it everywhere on the page. */
  async function save(item, typed) {
    const label = item.dataset.speaker;
    const current = job();
    if (!current) return;
    const name = typed.trim() || null;
    ui.viewerStatus.textContent = `Saving the name of ${label}…`;
    const response = await api
      .request(`/v1/jobs/${current.id}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ speaker_names: { [label]: name } }),
      })
      .catch(() => null);
    if (!response || !response.ok) {
      ui.viewerStatus.textContent = response
        ? `Could not rename ${label}: ${await problem(response)}`
        : "Could not rename (connection lost).";
      return;
    }
    remember(await response.json());
    fill(item); // the form's work is done
    relabel();
    ui.viewerStatus.textContent = name
      ? `${label} is now ${name}; the downloads use the name.`
      : `${label} has no name now.`;
    ui.speakersList.querySelector(`li[data-speaker="${label}"] .speaker-rename`)?.focus();
  }

  /** Show the job's current names (after a rename here, or one made elsewhere). */
  function relabel() {
    for (const node of ui.transcript.querySelectorAll(".seg-speaker")) {
      const name = nameOf(node.dataset.speaker);
      if (node.textContent !== name) node.textContent = name;
    }
    for (const item of ui.speakersList.querySelectorAll("li.speaker")) {
      if (!item.querySelector("form")) fill(item);
    }
  }

  ui.speakersList.addEventListener("click", (e) => {
    const item = e.target.closest("li.speaker");
    if (!item) return;
    if (e.target.closest(".speaker-rename")) edit(item);
    else if (e.target.closest(".speaker-cancel")) {
      fill(item);
      item.querySelector(".speaker-rename").focus();
    }
  });
  ui.speakersList.addEventListener("submit", (e) => {
    e.preventDefault();
    const item = e.target.closest("li.speaker");
    if (item) save(item, e.target.querySelector("input").value);
  });
  ui.speakersList.addEventListener("keydown", (e) => {
    const item = e.target.closest("li.speaker");
    if (e.key === "Escape" && item?.querySelector("form")) {
      fill(item);
      item.querySelector(".speaker-rename").focus();
    }
  });

  return { tag, show, hide, relabel };
}
