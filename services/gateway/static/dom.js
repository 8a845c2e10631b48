/* The page's elements, found once, and a small helper to make new ones. */

/** Every element of `root` that has an id, by its id in camelCase (`job-list` → `jobList`).
 * Asking for one the page lacks throws at once, instead of failing later on `undefined`. */
export function elements(root) {
  const found = {};
  for (const node of root.querySelectorAll("[id]")) {
    found[node.id.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = node;
  }
  return new Proxy(Object.freeze(found), {
    get(target, name) {
      if (typeof name === "string" && !(name in target)) throw new Error(`The page has no #${name}`);
      return target[name];
    },
  });
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Scroll `box` so `target` is in view (a third from the top), unless it already is. */
export function scrollIntoBox(box, target) {
  const b = box.getBoundingClientRect();
  const r = target.getBoundingClientRect();
  if (r.top >= b.top + 8 && r.bottom <= b.bottom - 8) return;
  const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  box.scrollTo({ top: box.scrollTop + (r.top - b.top) - b.height / 3, behavior: reduce ? "auto" : "smooth" });
}
