// The detail view (a dialog, also opened by ?image=ID): the preview with the text read in it boxed,
// every tag and category with its score, the facts, editor tags, reprocess and delete.
import { $, el, fmtTime, fmtSize } from "/ui/dom.js";
import { thumbHashToDataURL } from "/ui/thumbhash.js";
import { state, WEAK, urlFor } from "/ui/state.js";
import { stageLabel, describe, cameraName } from "/ui/doc.js";
import { api, notice } from "/ui/api.js";
import { cardOf, upsert, remove, loadMore } from "/ui/grid.js";
import { toggleFilter } from "/ui/filters.js";
import { refreshFacetsSoon } from "/ui/facets.js";

const dialog = $("detail");

function neighbour(step) {
  const i = state.order.indexOf(state.image);
  if (i < 0) return null;
  return state.order[i + step] || null;
}

// Whether opening the view added a history entry: closing it then goes back to the grid's entry.
let detailPushed = false;

export async function openDetail(id, { push = true } = {}) {
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

export function closeDetail({ push = true } = {}) {
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

export function renderDetail(doc) {
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
