// The API: JSON requests, their errors, and whether the page is signed in. A 401 from any request
// shows the sign-in form. The key is traded for an HttpOnly, SameSite=Strict cookie; it never stays
// in the page.
import { $ } from "/ui/dom.js";
import { connectEvents, disconnectEvents } from "/ui/live.js";

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, options = {}) {
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

export function notice(message) {
  const n = $("notice");
  n.textContent = message || "";
  n.hidden = !message;
}

const signin = $("signin");
export let isSignedIn = false;

export function signedIn() {
  if (isSignedIn) return;
  isSignedIn = true;
  signin.hidden = true;
  for (const id of ["app", "signout", "pick", "facets-toggle"]) $(id).hidden = false;
  connectEvents();
}

export function showSignIn(message) {
  isSignedIn = false;
  disconnectEvents();
  signin.hidden = false;
  for (const id of ["app", "signout", "pick", "facets-toggle"]) $(id).hidden = true;
  const dialog = $("detail");
  if (dialog.open) dialog.close();
  $("signin-error").textContent = message || "";
}
