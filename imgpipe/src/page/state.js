// What the page shows: the filters (they live in the URL), the documents loaded, the grid's place.

export const LIMIT = 40;
export const CHIP_MIN = 0.3; // categories at least this sure are shown as chips on cards
export const WEAK = 0.1; // tags below this are set apart in the detail view
const FILTERS = ["q", "tag", "status", "camera", "month"];

export const state = {
  filters: {}, // q, tag, status, camera, month
  image: null, // the open detail view's id
  docs: new Map(), // id -> doc, every doc shown
  order: [], // ids in grid order
  cursor: null,
  loading: false,
  generation: 0, // bumped on every reset, so a late answer for old filters is dropped
  done: false,
};

export function readURL() {
  const params = new URLSearchParams(location.search);
  const filters = {};
  for (const k of FILTERS) if (params.get(k)) filters[k] = params.get(k);
  return { filters, image: params.get("image") };
}

export function urlFor(filters, image) {
  const params = new URLSearchParams();
  for (const k of FILTERS) if (filters[k]) params.set(k, filters[k]);
  if (image) params.set("image", image);
  const s = params.toString();
  return s ? `/?${s}` : "/";
}

export function query(extra = {}) {
  const params = new URLSearchParams();
  for (const k of FILTERS) if (state.filters[k]) params.set(k, state.filters[k]);
  for (const [k, v] of Object.entries(extra)) if (v) params.set(k, v);
  return params.toString();
}
