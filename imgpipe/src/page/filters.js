// The filters: set from the URL, the search box, facets and chips; shown as removable chips above
// the grid; each change is a history entry, so the back button undoes it.
import { $, el } from "/ui/dom.js";
import { state, readURL, urlFor } from "/ui/state.js";
import { monthLabel } from "/ui/doc.js";
import { reset } from "/ui/grid.js";
import { loadFacets } from "/ui/facets.js";
import { openDetail, closeDetail } from "/ui/detail.js";

const searchEl = $("search");

/** Applies new filters: URL, grid and facets (the page starts here too, from the URL). */
export function setFilters(filters, { push = true } = {}) {
  state.filters = Object.fromEntries(Object.entries(filters).filter(([, v]) => v));
  if (push) history.pushState(null, "", urlFor(state.filters, state.image));
  searchEl.value = state.filters.q || "";
  renderActive();
  reset();
  loadFacets();
}

export function toggleFilter(key, value) {
  const filters = { ...state.filters };
  filters[key] = filters[key] && filters[key].toLowerCase() === String(value).toLowerCase() ? "" : value;
  setFilters(filters);
}

window.addEventListener("popstate", () => {
  const { filters, image } = readURL();
  const changed = JSON.stringify(filters) !== JSON.stringify(state.filters);
  state.image = image;
  if (changed) setFilters(filters, { push: false });
  if (image) openDetail(image, { push: false });
  else closeDetail({ push: false });
});

function renderActive() {
  const active = $("active");
  const names = { q: "search", tag: "tag", status: "status", camera: "camera", month: "date" };
  const chips = Object.entries(state.filters).map(([k, v]) =>
    el("button", { type: "button", class: "tag active-filter", "aria-label": `Remove filter ${names[k]} ${v}`, onclick: () => setFilters({ ...state.filters, [k]: "" }) },
      `${names[k]}: ${k === "month" ? monthLabel(v) : v} ✕`));
  if (chips.length > 1) chips.push(el("button", { type: "button", class: "link", onclick: () => setFilters({}) }, "Clear all"));
  active.replaceChildren(...chips);
}

// The title goes back to everything without leaving the page (uploads keep going).
$("home").addEventListener("click", (e) => { e.preventDefault(); closeDetail({ push: false }); setFilters({}); });

let typing;
searchEl.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    const q = searchEl.value.trim();
    if (q !== (state.filters.q || "")) setFilters({ ...state.filters, q });
  }, 250);
});
$("searchform").addEventListener("submit", (e) => {
  e.preventDefault();
  clearTimeout(typing);
  const q = searchEl.value.trim();
  if (q !== (state.filters.q || "")) setFilters({ ...state.filters, q });
});
