// The facet sidebar: counts by status, category (a tree), tag, month and camera under the current
// filters; each entry is a button that toggles its filter.
import { $, el } from "/ui/dom.js";
import { state, query } from "/ui/state.js";
import { monthLabel } from "/ui/doc.js";
import { api } from "/ui/api.js";
import { toggleFilter } from "/ui/filters.js";

function facetButton(key, value, count, label = value) {
  const active = (state.filters[key] || "").toLowerCase() === String(value).toLowerCase();
  return el("button", { type: "button", class: "facet", "aria-pressed": active ? "true" : "false", "data-key": key, "data-value": value,
    onclick: () => toggleFilter(key, value) }, el("span", { class: "label" }, label), el("span", { class: "count" }, String(count)));
}

function facetSection(title, items, key, { labelOf = (v) => v, limit = 12 } = {}) {
  if (!items || !items.length) return null;
  const list = el("ul", {});
  items.forEach((it, i) => {
    const li = el("li", {}, facetButton(key, it.value, it.count, labelOf(it.value)));
    if (i >= limit) li.className = "extra";
    list.append(li);
  });
  const section = el("section", { class: "facet-group" }, el("h2", {}, title), list);
  if (items.length > limit) {
    const more = el("button", { type: "button", class: "link", "aria-expanded": "false", onclick: () => {
      const open = list.classList.toggle("all");
      more.setAttribute("aria-expanded", String(open));
      more.textContent = open ? "fewer" : `${items.length - limit} more`;
    } }, `${items.length - limit} more`);
    section.append(more);
  }
  return section;
}

/** Categories such as "animal" and "animal/cat" as a tree of nested lists. */
function categoryTree(items) {
  if (!items || !items.length) return null;
  const root = { children: new Map() };
  for (const it of items) {
    let node = root;
    const parts = it.value.split("/");
    parts.forEach((part, i) => {
      const path = parts.slice(0, i + 1).join("/");
      if (!node.children.has(part)) node.children.set(part, { path, count: null, children: new Map() });
      node = node.children.get(part);
    });
    node.count = it.count;
  }
  const render = (node) => {
    const ul = el("ul", {});
    for (const [name, child] of node.children) {
      const li = el("li", {}, facetButton("tag", child.path, child.count ?? "", name));
      if (child.children.size) li.append(render(child));
      ul.append(li);
    }
    return ul;
  };
  return el("section", { class: "facet-group tree" }, el("h2", {}, "Categories"), render(root));
}

let facetsGeneration = 0;
export async function loadFacets() {
  const generation = ++facetsGeneration;
  try {
    const f = await api(`/api/facets?${query()}`);
    if (generation !== facetsGeneration) return;
    $("facets").replaceChildren(...[
      facetSection("Status", f.status, "status"),
      categoryTree(f.categories),
      facetSection("Tags", f.tags, "tag"),
      facetSection("Date", f.months, "month", { labelOf: monthLabel }),
      facetSection("Camera", f.cameras, "camera"),
    ].filter(Boolean));
  } catch (e) {
    if (e.status !== 401 && generation === facetsGeneration) $("facets").replaceChildren(el("p", { class: "error" }, `Filters unavailable: ${e.message}`));
  }
}

// At most one facet request a second while events stream in, and one after the last.
let facetsTimer = null;
export function refreshFacetsSoon() {
  if (facetsTimer) return;
  facetsTimer = setTimeout(() => { facetsTimer = null; loadFacets(); }, 1000);
}

$("facets-toggle").addEventListener("click", (e) => {
  const open = document.body.classList.toggle("facets-open");
  e.currentTarget.setAttribute("aria-expanded", String(open));
});
