// The grid: a card per document, newest first, a page at a time as the view nears its end.
import { $, el } from "/ui/dom.js";
import { thumbHashToDataURL } from "/ui/thumbhash.js";
import { state, LIMIT, WEAK, query } from "/ui/state.js";
import { stageLabel, describe, confidentCategories } from "/ui/doc.js";
import { api, notice, signedIn } from "/ui/api.js";
import { setFilters, toggleFilter } from "/ui/filters.js";
import { openDetail, renderDetail } from "/ui/detail.js";

const grid = $("grid");

function thumbImg(doc) {
  const r = doc.renditions;
  if (!r || !r.thumb || !r.thumb.url) return null;
  const attrs = { src: r.thumb.url, alt: describe(doc), width: r.thumb.width, height: r.thumb.height, loading: "lazy", decoding: "async" };
  if (r.preview && r.preview.url) attrs.srcset = `${r.thumb.url} 1x, ${r.preview.url} 2x`;
  const img = el("img", attrs);
  const loaded = () => img.closest(".thumb")?.classList.add("loaded");
  if (img.complete && img.naturalWidth) queueMicrotask(loaded);
  img.addEventListener("load", loaded);
  // A busy server (429) or a blip: try once more a little later, then leave the placeholder.
  img.addEventListener("error", () => {
    if (img.dataset.retried) return;
    img.dataset.retried = "1";
    setTimeout(() => { if (img.isConnected) { const s = img.getAttribute("srcset"); img.removeAttribute("srcset"); img.src = r.thumb.url; if (s) img.srcset = s; } }, 3000);
  });
  return img;
}

function card(doc, old) {
  const thumb = el("div", { class: "thumb" });
  const placeholder = doc.placeholder && thumbHashToDataURL(doc.placeholder);
  if (placeholder) thumb.style.backgroundImage = `url("${placeholder}")`;
  const oldImg = old && old.querySelector(".thumb img");
  const newUrl = doc.renditions && doc.renditions.thumb && doc.renditions.thumb.url;
  let img;
  if (oldImg && newUrl && oldImg.getAttribute("src") === newUrl) {
    img = oldImg;
    img.alt = describe(doc);
    if (old.querySelector(".thumb.loaded")) thumb.classList.add("loaded");
  } else {
    img = thumbImg(doc);
  }
  if (img) thumb.append(img);
  else thumb.append(el("span", { class: "glyph", "aria-hidden": "true" }, doc.status === "failed" ? "✕" : "…"));
  const open = el("button", { type: "button", class: "open", "aria-label": `Open ${doc.original.filename}`, onclick: () => openDetail(doc.id) }, thumb);

  const chips = el("div", { class: "chips" });
  for (const c of confidentCategories(doc)) {
    chips.append(el("button", { type: "button", class: "tag category", title: `category, score ${c.score.toFixed(2)}`, onclick: () => toggleFilter("tag", c.name) }, c.name));
  }
  for (const t of doc.editor_tags || []) {
    chips.append(el("button", { type: "button", class: "tag editor", title: "editor tag", onclick: () => toggleFilter("tag", t) }, t));
  }
  const top = (doc.tags || []).filter((t) => t.score >= WEAK).slice(0, 3);
  for (const t of top) {
    chips.append(el("button", { type: "button", class: "tag", title: `tag, score ${t.score.toFixed(2)}`, onclick: () => toggleFilter("tag", t.label) },
      t.label, el("span", { class: "score" }, ` ${t.score.toFixed(2)}`)));
  }
  const body = el("div", { class: "body" },
    el("div", { class: "name", title: doc.original.filename }, doc.original.filename),
    el("div", { class: `status ${doc.retrying ? "retrying" : doc.status}` }, stageLabel(doc)),
    chips);
  const text = (doc.text || []).map((l) => l.text).join(" · ");
  if (text) body.append(el("div", { class: "text", title: text }, text));
  return el("article", { class: "card", "data-id": doc.id, "data-status": doc.status }, open, body);
}

export function cardOf(id) {
  return grid.querySelector(`article.card[data-id="${CSS.escape(id)}"]`);
}

/** Shows `doc`: replaces its card, or adds one (a live document where its date sorts it). */
export function upsert(doc, { live = true } = {}) {
  state.docs.set(doc.id, doc);
  const old = cardOf(doc.id);
  if (old) {
    old.replaceWith(card(doc, old));
  } else {
    const c = card(doc);
    const at = live ? state.order.findIndex((id) => (state.docs.get(id).created_at || "") < (doc.created_at || "")) : -1;
    if (at >= 0) { cardOf(state.order[at]).before(c); state.order.splice(at, 0, doc.id); } else { grid.append(c); state.order.push(doc.id); }
  }
  if (state.image === doc.id) renderDetail(doc);
  renderEmpty();
}

export function remove(id) {
  state.docs.delete(id);
  state.order = state.order.filter((x) => x !== id);
  cardOf(id)?.remove();
  renderEmpty();
}

function renderEmpty() {
  const empty = $("empty");
  const none = state.order.length === 0 && state.done;
  empty.hidden = !none;
  if (!none) return;
  const filtered = Object.keys(state.filters).length > 0;
  empty.replaceChildren(filtered
    ? el("p", {}, "No images match. ", el("button", { type: "button", onclick: () => setFilters({}) }, "Clear the filters"))
    : el("p", {}, "No images yet — drop photos here, or ", el("button", { type: "button", onclick: () => $("files").click() }, "choose photos"), "."));
}

/** Starts the grid over, for the current filters. */
export function reset() {
  state.generation++;
  state.docs.clear();
  state.order = [];
  state.cursor = null;
  state.done = false;
  state.loading = false;
  grid.replaceChildren();
  $("empty").hidden = true;
  loadMore();
}

/** Forgets every card (on signing out). */
export function clear() {
  grid.replaceChildren();
  state.docs.clear();
  state.order = [];
}

export async function loadMore() {
  if (state.loading || state.done) return;
  state.loading = true;
  const generation = state.generation;
  $("more-text").textContent = "Loading…";
  $("more-button").hidden = true;
  try {
    const page = await api(`/api/images?${query({ limit: String(LIMIT), cursor: state.cursor })}`);
    if (generation !== state.generation) return;
    signedIn();
    for (const doc of page.items) if (!state.docs.has(doc.id)) upsert(doc, { live: false });
    state.cursor = page.next_cursor || null;
    state.done = !state.cursor;
    notice("");
  } catch (e) {
    if (generation !== state.generation) return;
    if (e.status !== 401) notice(`Could not load images: ${e.message}`);
    state.done = e.status === 401 || e.status === 400;
  } finally {
    if (generation === state.generation) {
      state.loading = false;
      $("more-text").textContent = "";
      $("more-button").hidden = state.done;
      renderEmpty();
      // The sentinel may still be near the view (a tall screen): keep filling.
      if (!state.done && nearEnd()) requestAnimationFrame(() => { if (nearEnd()) loadMore(); });
    }
  }
}

$("more-button").addEventListener("click", () => loadMore());
const SCROLL_AHEAD = 800; // px below the view where the next page starts loading
const nearEnd = () => !$("app").hidden && $("more").getBoundingClientRect().top < innerHeight + SCROLL_AHEAD;
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && !$("app").hidden) loadMore();
}, { rootMargin: `${SCROLL_AHEAD}px 0px` }).observe($("more"));
