// What a document says, in words: its stage, a short description, its camera and month as the
// facets name them, and whether it belongs under the current filters.
import { state, CHIP_MIN, WEAK } from "/ui/state.js";

export function stageLabel(doc) {
  if (doc.status === "failed") return doc.error ? `failed: ${doc.error.reason}` : "failed";
  if (doc.retrying) return `retrying (attempt ${doc.retrying.attempt}): ${doc.retrying.reason}`;
  if (doc.status === "done") return "tagged";
  if (doc.status === "processing") return "resized, tagging…";
  return "uploaded, resizing…";
}

export function describe(doc) {
  const words = (doc.tags || []).filter((t) => t.score >= WEAK).slice(0, 3).map((t) => t.label);
  return words.length ? words.join(", ") : doc.original.filename;
}

export function confidentCategories(doc) {
  return (doc.categories || []).filter((c) => c.score >= CHIP_MIN);
}

/** The camera as the facets name it (as the server does): the make left out when the model starts with it. */
export function cameraName(doc) {
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
export function matches(doc) {
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

const MONTHS = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric", timeZone: "UTC" });
export function monthLabel(v) {
  const m = /^(\d{4})-(\d{2})$/.exec(v);
  return m ? MONTHS.format(new Date(Date.UTC(+m[1], +m[2] - 1, 1))) : v;
}
