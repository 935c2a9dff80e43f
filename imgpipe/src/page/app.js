"use strict";
const grid = document.getElementById("grid");
const uploads = document.getElementById("uploads");
const filterEl = document.getElementById("filter");
const searchEl = document.getElementById("search");
let tagFilter = new URLSearchParams(location.search).get("tag") || "";
searchEl.value = new URLSearchParams(location.search).get("q") || "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// Browsers that cannot show HEIC or AVIF often report no type for them: name it by extension.
const TYPES_BY_EXTENSION = { heic: "image/heic", heif: "image/heif", avif: "image/avif" };
function contentType(file) {
  const extension = file.name.split(".").pop().toLowerCase();
  return file.type || TYPES_BY_EXTENSION[extension] || "application/octet-stream";
}

async function upload(file) {
  const line = el("div", {}, `${file.name}: requesting upload URL…`);
  uploads.prepend(line);
  try {
    const res = await fetch("/api/uploads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ filename: file.name, content_type: contentType(file), size: file.size }),
    });
    const ticket = await res.json();
    if (res.status === 401) showSignIn("Sign in to upload.");
    if (!res.ok) throw new Error(ticket.error || res.statusText);
    line.textContent = `${file.name}: uploading…`;
    const put = await fetch(ticket.url, { method: ticket.method, headers: ticket.headers, body: file });
    if (!put.ok) throw new Error(`storage answered ${put.status}`);
    line.textContent = `${file.name}: uploaded, processing (${ticket.image_id})`;
    refresh();
  } catch (e) {
    line.className = "err";
    line.textContent = `${file.name}: ${e.message}`;
  }
}

function card(doc) {
  const thumb = doc.renditions && doc.renditions.thumb;
  const img = thumb
    ? el("img", { src: thumb.url, alt: doc.original.filename, width: thumb.width, height: thumb.height })
    : el("div", { class: "img" }, doc.status === "failed" ? "✕" : "…");
  const tags = el("div", {});
  for (const c of doc.categories || []) {
    tags.append(el("span", { class: "tag category", title: c.score.toFixed(3), onclick: () => setFilter(c.name) }, c.name));
  }
  for (const t of doc.tags || []) {
    tags.append(el("span", { class: "tag", title: t.score.toFixed(3), onclick: () => setFilter(t.label) }, t.label));
  }
  const body = el("div", { class: "body" },
    el("div", { class: "name", title: doc.original.filename }, doc.original.filename),
    el("div", { class: `status ${doc.status}` }, doc.status),
    tags);
  const text = (doc.text || []).map(l => l.text).join(" · ");
  if (text) body.append(el("div", { class: "text", title: text }, text));
  if (doc.error) body.append(el("div", { class: "error" }, `${doc.error.stage}: ${doc.error.reason}`));
  return el("article", { class: "card", "data-id": doc.id, "data-status": doc.status }, img, body);
}

function setFilter(tag) {
  tagFilter = tag;
  refresh();
}

let shown = "";
let latest = 0;
async function refresh() {
  // A poll and a keystroke may overlap: only the newest request's answer is shown.
  const seq = ++latest;
  const q = new URLSearchParams({ limit: "60" });
  if (tagFilter) q.set("tag", tagFilter);
  if (searchEl.value.trim()) q.set("q", searchEl.value.trim());
  try {
    const res = await fetch(`/api/images?${q}`);
    const page = await res.json();
    if (seq !== latest) return;
    if (res.status === 401) { showSignIn(""); return; }
    signout.hidden = false;
    if (!res.ok) { filterEl.replaceChildren(el("span", { class: "error" }, page.error || res.statusText)); return; }
    // Rebuild only when something changed, so images do not flicker.
    const key = JSON.stringify(page.items.map(d => [d.id, d.status, d.tags.length]));
    if (key !== shown) {
      shown = key;
      grid.replaceChildren(...page.items.map(card));
    }
    filterEl.replaceChildren(tagFilter ? el("span", { class: "tag", onclick: () => setFilter("") }, `tag: ${tagFilter} ✕`) : "");
  } catch (e) {
    /* The next poll retries. */
  }
}

const input = document.getElementById("files");
input.addEventListener("change", () => { [...input.files].forEach(upload); input.value = ""; });
const drop = document.getElementById("drop");
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); [...e.dataTransfer.files].forEach(upload); });
let typing;
searchEl.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(refresh, 200); });

// Signing in trades the key for an HttpOnly, SameSite=Strict cookie: the key never stays in
// the page, its storage or its URL.
const signin = document.getElementById("signin");
const signout = document.getElementById("signout");
function showSignIn(message) {
  signin.hidden = false;
  signout.hidden = true;
  document.getElementById("signin-error").textContent = message || "";
}
signin.addEventListener("submit", async e => {
  e.preventDefault();
  const key = document.getElementById("key");
  const res = await fetch("/api/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: key.value.trim() }),
  });
  key.value = "";
  if (!res.ok) { showSignIn((await res.json()).error || res.statusText); return; }
  signin.hidden = true;
  signout.hidden = false;
  refresh();
});
signout.addEventListener("click", async () => {
  await fetch("/api/session", { method: "DELETE" });
  grid.replaceChildren();
  showSignIn("");
});
refresh();
setInterval(() => { if (signin.hidden) refresh(); }, 1000);
