// The imgpipe page: upload, browse, find and correct images. Plain JS, no build step; the server
// pushes every change of a document over /api/events (Server-Sent Events).
"use strict";

const $ = (id) => document.getElementById(id);
const grid = $("grid");
const searchEl = $("search");

const LIMIT = 40;
const CHIP_MIN = 0.3; // categories at least this sure are shown as chips on cards
const WEAK = 0.1; // tags below this are set apart in the detail view
const MAX_BYTES = 50 * 1024 * 1024;
const TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/heic", "image/heif", "image/avif"];
const TYPES_BY_EXTENSION = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp", gif: "image/gif",
  tif: "image/tiff", tiff: "image/tiff", heic: "image/heic", heif: "image/heif", avif: "image/avif",
};
const FILTERS = ["q", "tag", "status", "camera", "month"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

// ---------------------------------------------------------------------------------------------
// ThumbHash decoding, after the reference implementation by Evan Wallace
// (https://github.com/evanw/thumbhash, MIT licence), as the `thumbhash` crate the resizer uses.

/** Decodes a ThumbHash (bytes) to `{w, h, rgba}`, at most 32 px on the longer side. */
function thumbHashToRGBA(hash) {
  const { PI, cos, round, max, min } = Math;
  const h24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
  const h16 = hash[3] | (hash[4] << 8);
  const lDc = (h24 & 63) / 63, pDc = ((h24 >> 6) & 63) / 31.5 - 1, qDc = ((h24 >> 12) & 63) / 31.5 - 1;
  const lScale = ((h24 >> 18) & 31) / 31;
  const hasAlpha = h24 >> 23 !== 0;
  const pScale = ((h16 >> 3) & 63) / 63, qScale = ((h16 >> 9) & 63) / 63;
  const landscape = h16 >> 15 !== 0;
  const lMax = hasAlpha ? 5 : 7;
  const lx = max(3, landscape ? lMax : h16 & 7), ly = max(3, landscape ? h16 & 7 : lMax);
  let pos = 5;
  let aDc = 1, aScale = 1;
  if (hasAlpha) { aDc = (hash[5] & 15) / 15; aScale = (hash[5] >> 4) / 15; pos = 6; }
  let nibble = 0;
  const channel = (nx, ny, scale) => {
    const ac = [];
    for (let cy = 0; cy < ny; cy++) {
      for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++) {
        const bits = (hash[pos + (nibble >> 1)] >> ((nibble & 1) << 2)) & 15;
        nibble++;
        ac.push((bits / 7.5 - 1) * scale);
      }
    }
    return ac;
  };
  const lAc = channel(lx, ly, lScale);
  const pAc = channel(3, 3, pScale * 1.25);
  const qAc = channel(3, 3, qScale * 1.25);
  const aAc = hasAlpha ? channel(5, 5, aScale) : [];
  const lmin = hash[3] & 7;
  const ratio = (landscape ? lMax : lmin) / (landscape ? lmin : lMax);
  const w = round(ratio > 1 ? 32 : 32 * ratio), h = round(ratio > 1 ? 32 / ratio : 32);
  const rgba = new Uint8ClampedArray(w * h * 4);
  const fx = [], fy = [];
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i += 4) {
      let l = lDc, p = pDc, q = qDc, a = aDc;
      for (let cx = 0, n = max(lx, hasAlpha ? 5 : 3); cx < n; cx++) fx[cx] = cos((PI / w) * (x + 0.5) * cx);
      for (let cy = 0, n = max(ly, hasAlpha ? 5 : 3); cy < n; cy++) fy[cy] = cos((PI / h) * (y + 0.5) * cy);
      for (let cy = 0, j = 0; cy < ly; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx * ly < lx * (ly - cy); cx++, j++) l += lAc[j] * fx[cx] * fy2;
      }
      for (let cy = 0, j = 0; cy < 3; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 3 - cy; cx++, j++) {
          const f = fx[cx] * fy2;
          p += pAc[j] * f;
          q += qAc[j] * f;
        }
      }
      if (hasAlpha) {
        for (let cy = 0, j = 0; cy < 5; cy++) {
          for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 5 - cy; cx++, j++) a += aAc[j] * fx[cx] * fy2;
        }
      }
      const b = l - (2 / 3) * p;
      const r = (3 * l - b + q) / 2;
      const g = r - q;
      rgba[i] = max(0, min(1, r)) * 255;
      rgba[i + 1] = max(0, min(1, g)) * 255;
      rgba[i + 2] = max(0, min(1, b)) * 255;
      rgba[i + 3] = max(0, min(1, a)) * 255;
    }
  }
  return { w, h, rgba };
}

const placeholderCache = new Map();
/** A PNG data URL of the base64 ThumbHash `b64`, or null when it cannot be decoded. */
function thumbHashToDataURL(b64) {
  if (placeholderCache.has(b64)) return placeholderCache.get(b64);
  let url = null;
  try {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    if (bytes.length >= 5) {
      const { w, h, rgba } = thumbHashToRGBA(bytes);
      const canvas = el("canvas", { width: w, height: h });
      canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
      url = canvas.toDataURL();
    }
  } catch (e) {
    url = null;
  }
  placeholderCache.set(b64, url);
  return url;
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const init = { ...options, headers: { ...(options.headers || {}) } };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers["content-type"] = "application/json";
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    showSignIn("");
    throw new ApiError(401, "Sign in first.");
  }
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}

function notice(message) {
  const n = $("notice");
  n.textContent = message || "";
  n.hidden = !message;
}

// ---------------------------------------------------------------------------------------------
// State: the filters live in the URL.

const state = {
  filters: {}, // q, tag, status, camera, month
  image: null, // the open detail view's id
  docs: new Map(), // id -> doc, every doc shown
  order: [], // ids in grid order
  cursor: null,
  loading: false,
  generation: 0, // bumped on every reset, so a late answer for old filters is dropped
  done: false,
};

function readURL() {
  const params = new URLSearchParams(location.search);
  const filters = {};
  for (const k of FILTERS) if (params.get(k)) filters[k] = params.get(k);
  return { filters, image: params.get("image") };
}

function urlFor(filters, image) {
  const params = new URLSearchParams();
  for (const k of FILTERS) if (filters[k]) params.set(k, filters[k]);
  if (image) params.set("image", image);
  const s = params.toString();
  return s ? `/?${s}` : "/";
}

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const k of FILTERS) if (state.filters[k]) params.set(k, state.filters[k]);
  for (const [k, v] of Object.entries(extra)) if (v) params.set(k, v);
  return params.toString();
}

/** Applies new filters: URL, grid and facets. */
function setFilters(filters, { push = true } = {}) {
  state.filters = Object.fromEntries(Object.entries(filters).filter(([, v]) => v));
  if (push) history.pushState(null, "", urlFor(state.filters, state.image));
  searchEl.value = state.filters.q || "";
  renderActive();
  reset();
}

function toggleFilter(key, value) {
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

// ---------------------------------------------------------------------------------------------
// Grid

function stageLabel(doc) {
  if (doc.status === "failed") return doc.error ? `failed: ${doc.error.reason}` : "failed";
  if (doc.retrying) return `retrying (attempt ${doc.retrying.attempt}): ${doc.retrying.reason}`;
  if (doc.status === "done") return "tagged";
  if (doc.status === "processing") return "resized, tagging…";
  return "uploaded, resizing…";
}

function describe(doc) {
  const words = (doc.tags || []).filter((t) => t.score >= WEAK).slice(0, 3).map((t) => t.label);
  return words.length ? words.join(", ") : doc.original.filename;
}

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

function confidentCategories(doc) {
  return (doc.categories || []).filter((c) => c.score >= CHIP_MIN);
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

function cardOf(id) {
  return grid.querySelector(`article.card[data-id="${CSS.escape(id)}"]`);
}

/** Shows `doc`: replaces its card, or adds one (a live document where its date sorts it). */
function upsert(doc, { live = true } = {}) {
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

function remove(id) {
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

function reset() {
  state.generation++;
  state.docs.clear();
  state.order = [];
  state.cursor = null;
  state.done = false;
  state.loading = false;
  grid.replaceChildren();
  $("empty").hidden = true;
  loadMore();
  loadFacets();
}

async function loadMore() {
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

/** The camera as the facets name it (as the server does): the make left out when the model starts with it. */
function cameraName(doc) {
  const cam = doc.original.camera;
  if (!cam) return "";
  const make = (cam.make || "").trim(), model = (cam.model || "").trim();
  const first = make.split(/\s+/)[0] || "";
  if (!model) return make;
  if (!first || model.toLowerCase().startsWith(first.toLowerCase())) return model;
  return `${make} ${model}`;
}

/** The month the facets file `doc` under: taken if the camera says, else uploaded. */
function month(doc) {
  const taken = ((doc.original.camera && doc.original.camera.taken_at) || "").slice(0, 7);
  return /^\d{4}-\d{2}$/.test(taken) ? taken : (doc.created_at || "").slice(0, 7);
}

/** Whether `doc` belongs under the current filters, as far as the page can tell. */
function matches(doc) {
  const f = state.filters;
  if (f.status && doc.status !== f.status) return false;
  const lower = (s) => String(s || "").toLowerCase();
  if (f.tag) {
    const t = lower(f.tag);
    const all = [...(doc.tags || []).map((x) => x.label), ...(doc.categories || []).map((x) => x.name), ...(doc.editor_tags || [])];
    if (!all.some((x) => lower(x) === t)) return false;
  }
  if (f.camera && lower(cameraName(doc)) !== lower(f.camera)) return false;
  if (f.month && month(doc) !== f.month) return false;
  if (f.q) {
    const hay = lower([doc.original.filename, ...(doc.tags || []).map((x) => x.label), ...(doc.categories || []).map((x) => x.name),
      ...(doc.editor_tags || []), ...(doc.text || []).map((x) => x.text)].join(" "));
    if (!lower(f.q).split(/\s+/).filter(Boolean).every((w) => hay.includes(w))) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Facets

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

const MONTHS = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric", timeZone: "UTC" });
function monthLabel(v) {
  const m = /^(\d{4})-(\d{2})$/.exec(v);
  return m ? MONTHS.format(new Date(Date.UTC(+m[1], +m[2] - 1, 1))) : v;
}

let facetsGeneration = 0;
async function loadFacets() {
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
function refreshFacetsSoon() {
  if (facetsTimer) return;
  facetsTimer = setTimeout(() => { facetsTimer = null; loadFacets(); }, 1000);
}

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

$("facets-toggle").addEventListener("click", (e) => {
  const open = document.body.classList.toggle("facets-open");
  e.currentTarget.setAttribute("aria-expanded", String(open));
});

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

// ---------------------------------------------------------------------------------------------
// Live updates

let events = null;
let eventsRetry = null;
let lastSeq = null; // the last event id seen, to resume from when the page opens a new stream
function connectEvents() {
  if (events) return;
  const fresh = lastSeq === null;
  events = new EventSource(fresh ? "/api/events" : `/api/events?since=${encodeURIComponent(lastSeq)}`);
  const seen = (e) => { if (e.lastEventId) lastSeq = e.lastEventId; };
  // The stream starts at the feed's head: what changed between the first list and now is
  // fetched once more.
  events.addEventListener("ready", (e) => { seen(e); if (fresh) refreshFirstPage(); });
  events.addEventListener("seq", seen);
  events.addEventListener("image", (e) => {
    seen(e);
    let doc;
    try { doc = JSON.parse(e.data); } catch (err) { return; }
    // An unknown document is shown only if it is new (an upload): an old one changed by
    // someone else belongs further down, where scrolling finds it.
    if (state.docs.has(doc.id) || (matches(doc) && inLoadedRange(doc))) upsert(doc);
    refreshFacetsSoon();
  });
  events.addEventListener("deleted", (e) => {
    seen(e);
    let id;
    try { id = JSON.parse(e.data).id; } catch (err) { return; }
    if (state.image === id) closeDetail();
    remove(id);
    refreshFacetsSoon();
  });
  events.addEventListener("open", () => document.body.classList.remove("offline"));
  events.addEventListener("error", () => {
    document.body.classList.add("offline");
    // The browser reconnects by itself (sending Last-Event-ID) unless the server refused the
    // stream (a restart's 503): then a new stream resumes from the last event seen.
    if (events && events.readyState === EventSource.CLOSED) {
      events = null;
      clearTimeout(eventsRetry);
      eventsRetry = setTimeout(() => { if (isSignedIn) connectEvents(); }, 5000);
    }
  });
}

/** Whether `doc` sorts above the oldest card loaded so far (or all are loaded). */
function inLoadedRange(doc) {
  const last = state.docs.get(state.order[state.order.length - 1]);
  return state.done || !last || (doc.created_at || "") >= (last.created_at || "");
}

function disconnectEvents() {
  clearTimeout(eventsRetry);
  if (events) events.close();
  events = null;
  lastSeq = null;
}

async function refreshFirstPage() {
  const generation = state.generation;
  try {
    const page = await api(`/api/images?${query({ limit: String(LIMIT) })}`);
    if (generation !== state.generation) return;
    for (const doc of page.items) {
      const known = state.docs.get(doc.id);
      if (!known || JSON.stringify(known) !== JSON.stringify(doc)) upsert(doc);
    }
  } catch (e) {
    /* the stream carries on; the next change shows */
  }
}

// ---------------------------------------------------------------------------------------------
// Detail view

const dialog = $("detail");

function neighbour(step) {
  const i = state.order.indexOf(state.image);
  if (i < 0) return null;
  return state.order[i + step] || null;
}

// Whether opening the view added a history entry: closing it then goes back to the grid's entry.
let detailPushed = false;

async function openDetail(id, { push = true } = {}) {
  state.image = id;
  if (push) { history.pushState(null, "", urlFor(state.filters, id)); detailPushed = true; }
  let doc = state.docs.get(id);
  if (!doc) {
    try {
      doc = await api(`/api/images/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e.status !== 401) notice(`Could not open the image: ${e.message}`);
      if (state.image === id) closeDetail({ push: false });
      return;
    }
    if (state.image !== id) return;
  }
  renderDetail(doc);
  if (!dialog.open) dialog.showModal();
  // Near the end of what is loaded: load more so → keeps working.
  if (state.order.indexOf(id) >= state.order.length - 3) loadMore();
}

function closeDetail({ push = true } = {}) {
  const was = state.image;
  state.image = null;
  if (dialog.open) dialog.close();
  if (push && was) {
    if (detailPushed) history.back();
    else history.pushState(null, "", urlFor(state.filters, null));
  }
  detailPushed = false;
  if (was) cardOf(was)?.querySelector(".open")?.focus();
}

function go(step) {
  const id = neighbour(step);
  if (!id) return;
  state.image = id;
  history.replaceState(null, "", urlFor(state.filters, id));
  openDetail(id, { push: false });
}

$("detail-close").addEventListener("click", () => closeDetail());
$("detail-prev").addEventListener("click", () => go(-1));
$("detail-next").addEventListener("click", () => go(1));
dialog.addEventListener("cancel", (e) => { e.preventDefault(); closeDetail(); });
dialog.addEventListener("click", (e) => { if (e.target === dialog) closeDetail(); });
dialog.addEventListener("keydown", (e) => {
  if (e.target.closest("input, textarea")) return;
  if (e.key === "ArrowLeft") { e.preventDefault(); go(-1); }
  if (e.key === "ArrowRight") { e.preventDefault(); go(1); }
});

const fmtTime = (iso) => {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
};
const fmtSize = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`);

function scoreList(items, labelOf, filterValue) {
  const strong = items.filter((x) => x.score >= WEAK);
  const weak = items.filter((x) => x.score < WEAK);
  const row = (x) => el("li", { class: x.score < WEAK ? "weak" : "" },
    el("button", { type: "button", class: "link", onclick: () => { closeDetail({ push: false }); toggleFilter("tag", filterValue(x)); } }, labelOf(x)),
    el("span", { class: "score" }, x.score.toFixed(2)),
    el("meter", { min: 0, max: 1, value: x.score, "aria-hidden": "true" }));
  const list = el("ul", { class: "scores" }, ...strong.map(row));
  if (!weak.length) return list;
  const details = el("details", { class: "weak-tags" }, el("summary", {}, `${weak.length} weak (below ${WEAK})`), el("ul", { class: "scores" }, ...weak.map(row)));
  return el("div", {}, list, details);
}

function renderDetail(doc) {
  const r = doc.renditions;
  $("detail-title").textContent = doc.original.filename;
  $("detail-prev").disabled = !neighbour(-1);
  $("detail-next").disabled = !neighbour(1);
  const img = $("detail-img");
  const frame = img.parentElement;
  const src = r && r.preview && r.preview.url;
  if (src) {
    if (img.getAttribute("src") !== src) img.src = src;
    img.width = r.preview.width;
    img.height = r.preview.height;
    img.alt = describe(doc);
    img.hidden = false;
    const ph = doc.placeholder && thumbHashToDataURL(doc.placeholder);
    frame.style.backgroundImage = ph ? `url("${ph}")` : "";
  } else {
    img.removeAttribute("src");
    img.hidden = true;
    frame.style.backgroundImage = "";
  }
  // Text boxes in preview pixels, placed in percent so they follow the scaled image.
  const boxes = $("boxes");
  boxes.replaceChildren();
  if (src) {
    for (const line of doc.text || []) {
      const b = line.bbox;
      const box = el("div", { class: "box", title: `${line.text} (${line.score.toFixed(2)})` });
      box.style.left = `${(100 * b.x) / r.preview.width}%`;
      box.style.top = `${(100 * b.y) / r.preview.height}%`;
      box.style.width = `${(100 * b.width) / r.preview.width}%`;
      box.style.height = `${(100 * b.height) / r.preview.height}%`;
      boxes.append(box);
    }
  }
  $("detail-caption").textContent = src ? "" : stageLabel(doc);

  const o = doc.original;
  const info = [];
  info.push(doc.error
    ? el("p", { class: "status failed" }, `Failed at ${doc.error.stage}: ${doc.error.reason}`)
    : el("p", { class: `status ${doc.retrying ? "retrying" : doc.status}` }, stageLabel(doc)));

  const editor = el("section", { class: "editor-tags" }, el("h3", {}, "Editor tags"));
  const chips = el("div", { class: "chips" });
  for (const t of doc.editor_tags || []) {
    chips.append(el("button", { type: "button", class: "tag editor", "aria-label": `Remove tag ${t}`, title: "Remove",
      onclick: () => saveEditorTags(doc, (doc.editor_tags || []).filter((x) => x !== t)) }, `${t} ✕`));
  }
  if (!(doc.editor_tags || []).length) chips.append(el("span", { class: "muted" }, "none yet"));
  const input = el("input", { type: "text", id: "editor-tag", "aria-label": "New editor tag", placeholder: "add a tag", maxlength: "64", autocomplete: "off" });
  const form = el("form", { class: "add-tag", onsubmit: (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    const tags = doc.editor_tags || [];
    if (!tags.some((x) => x.toLowerCase() === t.toLowerCase())) saveEditorTags(doc, [...tags, t]);
    input.value = "";
  } }, input, el("button", { type: "submit" }, "Add"));
  editor.append(chips, form);
  info.push(editor);

  if ((doc.categories || []).length) info.push(el("section", {}, el("h3", {}, "Categories"), scoreList(doc.categories, (c) => c.name, (c) => c.name)));
  if ((doc.tags || []).length) info.push(el("section", {}, el("h3", {}, "Tags"), scoreList(doc.tags, (t) => t.label, (t) => t.label)));
  if ((doc.text || []).length) {
    info.push(el("section", { class: "ocr" }, el("h3", {}, "Text in the picture"),
      el("ol", {}, ...doc.text.map((l) => el("li", {}, l.text, el("span", { class: "score" }, ` ${l.score.toFixed(2)}`))))));
  }

  const facts = el("dl", { class: "facts" });
  const fact = (k, v) => { if (v !== undefined && v !== null && v !== "") facts.append(el("dt", {}, k), el("dd", {}, String(v))); };
  fact("File", `${o.filename}, ${fmtSize(o.size)}`);
  fact("Format", [o.format || o.content_type, o.width && o.height ? `${o.width} × ${o.height}` : ""].filter(Boolean).join(", "));
  const cam = o.camera;
  if (cam) {
    fact("Camera", cameraName(doc));
    fact("Lens", cam.lens);
    fact("Taken", cam.taken_at);
    if (cam.gps) fact("Location", `${cam.gps.latitude.toFixed(5)}, ${cam.gps.longitude.toFixed(5)}`);
  }
  fact("Uploaded", fmtTime(doc.created_at));
  const stages = doc.stages || {};
  for (const [k, label] of [["resized", "Resized"], ["tagged", "Tagged"], ["failed", "Failed"]]) {
    if (stages[k]) fact(label, fmtTime(stages[k]));
  }
  if (doc.model) fact("Model", `${doc.model.name} ${doc.model.version}`);
  info.push(el("section", {}, el("h3", {}, "Details"), facts));

  const actions = el("div", { class: "actions" });
  if (doc.links && doc.links.original) actions.append(el("a", { class: "button", href: doc.links.original, download: o.filename }, "Download original"));
  actions.append(el("button", { type: "button", id: "reprocess", onclick: () => reprocess(doc) }, "Reprocess"));
  actions.append(el("button", { type: "button", id: "delete", class: "danger", onclick: () => removeImage(doc) }, "Delete…"));
  info.push(actions);
  const focused = document.activeElement && document.activeElement.id;
  $("detail-info").replaceChildren(...info);
  if (focused === "editor-tag") $("editor-tag").focus();
}

async function saveEditorTags(doc, tags) {
  try {
    const updated = await api(`/api/images/${encodeURIComponent(doc.id)}`, { method: "PATCH", json: { editor_tags: tags } });
    upsert(updated || { ...doc, editor_tags: tags });
    refreshFacetsSoon();
    if (state.image === doc.id) $("editor-tag")?.focus();
  } catch (e) {
    if (e.status !== 401) notice(`Could not save the tags: ${e.message}`);
  }
}

async function reprocess(doc) {
  try {
    await api(`/api/images/${encodeURIComponent(doc.id)}/reprocess`, { method: "POST" });
    const button = $("reprocess");
    if (button) { button.disabled = true; button.textContent = "Reprocessing…"; }
  } catch (e) {
    if (e.status !== 401) notice(`Could not reprocess: ${e.message}`);
  }
}

async function removeImage(doc) {
  if (!confirm(`Delete ${doc.original.filename}? The original, its renditions and its tags are removed for good.`)) return;
  try {
    const next = neighbour(1) || neighbour(-1);
    await api(`/api/images/${encodeURIComponent(doc.id)}`, { method: "DELETE" });
    remove(doc.id);
    refreshFacetsSoon();
    if (state.image === doc.id) {
      if (next) { state.image = next; history.replaceState(null, "", urlFor(state.filters, next)); openDetail(next, { push: false }); } else closeDetail();
    }
  } catch (e) {
    if (e.status !== 401) notice(`Could not delete: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Uploads: a queue of jobs, four at a time; each has a line in the upload panel.

const jobs = [];
const POOL = 4;
let running = 0;

function contentType(file) {
  const ext = file.name.split(".").pop().toLowerCase();
  return file.type || TYPES_BY_EXTENSION[ext] || "application/octet-stream";
}

function check(file) {
  const type = contentType(file);
  if (!TYPES.includes(type)) return "not a supported type: JPEG, PNG, WebP, GIF, TIFF, HEIC/HEIF or AVIF only";
  if (file.size > MAX_BYTES) return `too large (${fmtSize(file.size)}; the limit is ${MAX_BYTES / 1048576} MB)`;
  if (file.size === 0) return "empty file";
  return null;
}

function addFiles(files) {
  if (!files.length) return;
  for (const file of files) {
    const job = { file, type: contentType(file), loaded: 0, state: "queued", attempts: 0, xhr: null, ticket: null };
    job.bar = el("progress", { max: file.size || 1, value: 0, "aria-label": `Upload of ${file.name}` });
    job.text = el("span", { class: "state" }, "queued");
    job.button = el("button", { type: "button", class: "link", "aria-label": `Cancel ${file.name}`, onclick: () => cancel(job) }, "Cancel");
    job.line = el("li", { "data-state": "queued", "data-name": file.name }, el("span", { class: "fname", title: file.name }, file.name), job.bar, job.text, job.button);
    jobs.push(job);
    $("upload-list").append(job.line);
    const problem = check(file);
    if (problem) finish(job, "rejected", problem);
  }
  $("uploads").hidden = false;
  document.body.classList.add("uploading");
  if (files.length <= 5 || window.innerWidth > 700) setUploadsOpen(true);
  pump();
  renderUploads();
}

function setState(job, s, text) {
  // Lines at work first, finished ones last: what needs an eye stays at the top.
  const list = $("upload-list");
  if (s === "uploading" && job.state !== "uploading") list.prepend(job.line);
  if (s === "uploaded") list.append(job.line);
  job.state = s;
  job.line.dataset.state = s;
  job.text.textContent = text || s;
}

function finish(job, s, text) {
  setState(job, s, text);
  if (s === "uploaded") job.bar.value = job.bar.max;
  if (s === "failed") {
    job.button.textContent = "Retry";
    job.button.setAttribute("aria-label", `Retry ${job.file.name}`);
    job.button.onclick = () => { job.attempts = 0; job.button.textContent = "Cancel"; job.button.onclick = () => cancel(job); setState(job, "queued"); pump(); renderUploads(); };
  } else if (s === "rejected") {
    job.button.textContent = "Dismiss";
    job.button.setAttribute("aria-label", `Dismiss ${job.file.name}`);
    job.button.onclick = () => drop(job);
    job.line.classList.add("err");
  } else {
    job.button.remove();
  }
  if (s === "failed") job.line.classList.add("err");
  // Finished lines leave the log after a moment; failures stay until retried or dismissed.
  if (s === "uploaded" || s === "cancelled") setTimeout(() => drop(job), 4000);
  renderUploads();
}

function drop(job) {
  const i = jobs.indexOf(job);
  if (i >= 0) jobs.splice(i, 1);
  job.line.remove();
  renderUploads();
}

function cancel(job) {
  if (job.state === "queued") { finish(job, "cancelled"); return; }
  job.cancelled = true;
  if (job.xhr) job.xhr.abort();
}

function renderUploads() {
  const live = jobs.filter((j) => j.state !== "cancelled" && j.state !== "rejected");
  const total = live.reduce((n, j) => n + j.file.size, 0);
  const loaded = live.reduce((n, j) => n + (j.state === "uploaded" ? j.file.size : j.loaded), 0);
  const doneCount = live.filter((j) => j.state === "uploaded").length;
  const failed = jobs.filter((j) => j.state === "failed" || j.state === "rejected").length;
  const active = live.filter((j) => j.state === "queued" || j.state === "uploading" || j.state === "requesting").length;
  $("overall").max = total || 1;
  $("overall").value = loaded;
  const parts = [];
  if (active) parts.push(`${doneCount} of ${live.length} uploaded`);
  else if (doneCount) parts.push(`${doneCount} uploaded`);
  if (failed) parts.push(`${failed} failed`);
  $("uploads-text").textContent = parts.join(", ");
  $("uploads-toggle").textContent = `Uploads (${jobs.length})`;
  if (!jobs.length) {
    $("uploads").hidden = true;
    document.body.classList.remove("uploading");
    setUploadsOpen(false);
  }
}

function setUploadsOpen(open) {
  $("upload-list").hidden = !open;
  $("uploads-toggle").setAttribute("aria-expanded", String(open));
}
$("uploads-toggle").addEventListener("click", () => setUploadsOpen($("upload-list").hidden));

function pump() {
  while (running < POOL) {
    const job = jobs.find((j) => j.state === "queued");
    if (!job) return;
    running++;
    setState(job, "requesting", "starting…");
    run(job).finally(() => { running--; pump(); });
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const transient = (status) => status === 0 || status === 408 || status === 429 || status >= 500;

async function run(job) {
  const file = job.file;
  for (;;) {
    try {
      if (!job.ticket) {
        const res = await fetch("/api/uploads", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ filename: file.name, content_type: job.type, size: file.size }),
        });
        const body = await res.json().catch(() => ({}));
        if (res.status === 401) { showSignIn("Sign in to upload."); throw Object.assign(new Error("not signed in"), { status: 401 }); }
        if (!res.ok) throw Object.assign(new Error(body.error || res.statusText), { status: res.status });
        job.ticket = body;
      }
      if (job.cancelled) throw Object.assign(new Error("cancelled"), { cancelled: true });
      setState(job, "uploading", "uploading");
      await put(job);
      finish(job, "uploaded", "uploaded");
      return;
    } catch (e) {
      if (job.cancelled || e.cancelled) {
        finish(job, "cancelled", "cancelled");
        // The server made a document for it; it would wait for bytes that never come.
        if (job.ticket) fetch(`/api/images/${encodeURIComponent(job.ticket.image_id)}`, { method: "DELETE" }).catch(() => {});
        return;
      }
      job.attempts++;
      if (e.status !== undefined && !transient(e.status)) { finish(job, "failed", e.message); return; }
      if (job.attempts > 3) { finish(job, "failed", `${e.message} (gave up after ${job.attempts} tries)`); return; }
      if (e.status === 403) job.ticket = null; // an expired URL: ask for a new one
      const wait = 1000 * 2 ** (job.attempts - 1);
      setState(job, "retrying", `${e.message}; retrying in ${wait / 1000} s`);
      job.loaded = 0;
      job.bar.value = 0;
      await sleep(wait);
      if (job.cancelled) { finish(job, "cancelled", "cancelled"); return; }
    }
  }
}

function put(job) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    job.xhr = xhr;
    xhr.open(job.ticket.method || "PUT", job.ticket.url);
    for (const [k, v] of Object.entries(job.ticket.headers || {})) {
      // The browser sets these itself and refuses to be told.
      if (!/^(content-length|host)$/i.test(k)) xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => {
      job.loaded = e.loaded;
      job.bar.value = e.loaded;
      job.text.textContent = `${Math.round((100 * e.loaded) / (e.total || job.file.size || 1))}%`;
      renderUploads();
    };
    xhr.onload = () => {
      job.xhr = null;
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else {
        // S3 errors are XML: <Message> says which part did not match.
        const m = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "");
        reject(Object.assign(new Error(`storage refused it (${xhr.status}${m ? `: ${m[1]}` : ""})`), { status: xhr.status === 403 ? 403 : xhr.status }));
      }
    };
    xhr.onerror = () => { job.xhr = null; reject(Object.assign(new Error("network error"), { status: 0 })); };
    xhr.onabort = () => { job.xhr = null; reject(Object.assign(new Error("cancelled"), { cancelled: true })); };
    xhr.send(job.file);
  });
}

const input = $("files");
$("pick").addEventListener("click", () => input.click());
input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });

// Drag and drop anywhere on the page.
let dragDepth = 0;
const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
document.addEventListener("dragenter", (e) => { if (!hasFiles(e) || $("app").hidden) return; e.preventDefault(); dragDepth++; $("dropzone").hidden = false; });
document.addEventListener("dragover", (e) => { if (!hasFiles(e)) return; e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
document.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) $("dropzone").hidden = true; });
document.addEventListener("drop", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  $("dropzone").hidden = true;
  if (!$("app").hidden) addFiles([...e.dataTransfer.files]);
});
window.addEventListener("beforeunload", (e) => {
  if (jobs.some((j) => j.state === "uploading" || j.state === "queued" || j.state === "requesting")) e.preventDefault();
});

// ---------------------------------------------------------------------------------------------
// Sign-in: the key is traded for an HttpOnly, SameSite=Strict cookie; it never stays in the page.

const signin = $("signin");
let isSignedIn = false;

function signedIn() {
  if (isSignedIn) return;
  isSignedIn = true;
  signin.hidden = true;
  for (const id of ["app", "signout", "pick", "facets-toggle"]) $(id).hidden = false;
  connectEvents();
}

function showSignIn(message) {
  isSignedIn = false;
  disconnectEvents();
  signin.hidden = false;
  for (const id of ["app", "signout", "pick", "facets-toggle"]) $(id).hidden = true;
  if (dialog.open) dialog.close();
  $("signin-error").textContent = message || "";
}

signin.addEventListener("submit", async (e) => {
  e.preventDefault();
  const key = $("key");
  const res = await fetch("/api/session", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: key.value.trim() }) });
  key.value = "";
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    $("signin-error").textContent = body.error || res.statusText;
    return;
  }
  signedIn();
  start();
});

$("signout").addEventListener("click", async () => {
  await fetch("/api/session", { method: "DELETE" });
  grid.replaceChildren();
  state.docs.clear();
  state.order = [];
  showSignIn("");
});

function start() {
  const { filters, image } = readURL();
  state.filters = filters;
  searchEl.value = filters.q || "";
  renderActive();
  reset();
  if (image) openDetail(image, { push: false });
}

start();
