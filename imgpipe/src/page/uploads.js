// Uploads: a queue of jobs, four at a time; each has a line in the upload panel. Files come from
// the picker or are dropped anywhere on the page.
import { $, el, fmtSize } from "/ui/dom.js";
import { showSignIn } from "/ui/api.js";

const MAX_BYTES = 50 * 1024 * 1024;
// The server's default `upload.allowed_types`; the server has the last word either way.
const TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/bmp", "image/heic", "image/heif", "image/avif"];
const TYPES_BY_EXTENSION = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", webp: "image/webp", gif: "image/gif",
  tif: "image/tiff", tiff: "image/tiff", bmp: "image/bmp", heic: "image/heic", heif: "image/heif", avif: "image/avif",
};

const jobs = [];
const POOL = 4;
let running = 0;

function contentType(file) {
  const ext = file.name.split(".").pop().toLowerCase();
  return file.type || TYPES_BY_EXTENSION[ext] || "application/octet-stream";
}

function check(file) {
  const type = contentType(file);
  if (!TYPES.includes(type)) return "not a supported type: JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF or AVIF only";
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
