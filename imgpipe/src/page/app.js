// The imgpipe page: upload, browse, find and correct images. Plain JS modules, no build step; the
// server pushes every change of a document over /api/events (Server-Sent Events).
//
// This is the entry; the rest are /ui/*.js: dom (el and small helpers), thumbhash (placeholders),
// state (filters, documents loaded), doc (a document in words), api (requests, sign-in state),
// filters (URL, search box, active chips), facets (the sidebar), grid (cards, paging), live (the
// event stream), detail (the dialog), uploads (queue, progress, retry, cancel, drag and drop).
// Some of them call each other (a card opens the detail view, which updates the card), so no
// module calls into another while it loads: each only defines functions and attaches handlers,
// and the page starts here, once every module is in.
import { $ } from "/ui/dom.js";
import { readURL } from "/ui/state.js";
import { signedIn, showSignIn } from "/ui/api.js";
import { setFilters } from "/ui/filters.js";
import { clear } from "/ui/grid.js";
import { openDetail } from "/ui/detail.js";
import "/ui/facets.js";
import "/ui/live.js";
import "/ui/uploads.js";

$("signin").addEventListener("submit", async (e) => {
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
  clear();
  showSignIn("");
});

/** Shows what the URL asks for: its filters, and the image it names. */
function start() {
  const { filters, image } = readURL();
  setFilters(filters, { push: false });
  if (image) openDetail(image, { push: false });
}

start();
