/* Search in the open transcript: phrases match across words; Enter steps forward,
 * Shift+Enter back. Works on the view the viewer hands it, never on the page at large. */

/** `view()` gives the viewer's open view (or null); `reveal(el)` scrolls a word into sight. */
export function createSearch({ ui, view, reveal }) {
  function clearMarks(open) {
    for (const m of open.matches || []) for (const w of m) w.el.classList.remove("match", "match-current");
    open.matches = [];
    open.match = -1;
  }

  function reset(clear) {
    const open = view();
    if (open) clearMarks(open);
    if (clear) ui.searchInput.value = "";
    ui.searchCount.textContent = "";
    ui.searchPrev.disabled = true;
    ui.searchNext.disabled = true;
    if (!clear && ui.searchInput.value.trim()) run();
  }

  function run() {
    const open = view();
    if (!open) return;
    clearMarks(open);
    const query = ui.searchInput.value.trim().toLowerCase().replace(/\s+/g, " ");
    if (!query) {
      ui.searchCount.textContent = "";
      ui.searchPrev.disabled = ui.searchNext.disabled = true;
      return;
    }
    // One string of all words, with each character's word, so phrases match across words.
    let text = "";
    const owner = [];
    open.words.forEach((w, i) => {
      const piece = (i ? " " : "") + w.text.toLowerCase();
      text += piece;
      for (let k = 0; k < piece.length; k += 1) owner.push(i);
    });
    for (let at = text.indexOf(query); at >= 0; at = text.indexOf(query, at + 1)) {
      const first = owner[at + (text[at] === " " ? 1 : 0)];
      const last = owner[at + query.length - 1];
      const words = open.words.slice(first, last + 1);
      for (const w of words) w.el.classList.add("match");
      open.matches.push(words);
    }
    const n = open.matches.length;
    ui.searchPrev.disabled = ui.searchNext.disabled = n === 0;
    ui.searchCount.textContent = n ? `${n} match${n === 1 ? "" : "es"}` : "No matches";
    if (n) step(1);
  }

  function step(direction) {
    const open = view();
    if (!open || !open.matches.length) return;
    if (open.match >= 0) for (const w of open.matches[open.match]) w.el.classList.remove("match-current");
    const n = open.matches.length;
    open.match = open.match < 0 ? 0 : (open.match + direction + n) % n;
    const words = open.matches[open.match];
    for (const w of words) w.el.classList.add("match-current");
    open.lastUser = Date.now(); // reading a match: do not yank the view back to playback
    reveal(words[0].el);
    ui.searchCount.textContent = `${open.match + 1} of ${n}`;
  }

  let timer = null;
  ui.searchInput.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(run, 150);
  });
  ui.searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(timer);
    if (!view()?.matches.length) run();
    else step(1);
  });
  ui.searchInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.shiftKey) {
      e.preventDefault();
      step(-1);
    }
  });
  ui.searchPrev.addEventListener("click", () => step(-1));
  return { reset, enable: (on) => (ui.searchInput.disabled = !on) };
}
