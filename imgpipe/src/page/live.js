// Live updates: the server pushes every change of a document over /api/events (Server-Sent
// Events); cards, the open detail view and the facets follow.
import { state, LIMIT, query } from "/ui/state.js";
import { matches } from "/ui/doc.js";
import { api, isSignedIn } from "/ui/api.js";
import { upsert, remove } from "/ui/grid.js";
import { closeDetail } from "/ui/detail.js";
import { refreshFacetsSoon } from "/ui/facets.js";

let events = null;
let eventsRetry = null;
let lastSeq = null; // the last event id seen, to resume from when the page opens a new stream
export function connectEvents() {
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

export function disconnectEvents() {
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
