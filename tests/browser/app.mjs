// Drives the imgpipe web app in Debian's headless Chromium, as issue 14's acceptance asks: sign in,
// upload three photos through the file input (progress bars, cards turning done without a
// reload, a second page seeing them appear), filter by a category facet and by status (URL and
// back button), search a word read in a picture, open the detail view and its text boxes, add an
// editor tag that survives a reload and a reprocess, delete an image (its card leaves both pages,
// its thumbnail answers 404), reload and count thumbnails served from the browser cache, check
// 360 px has no horizontal scroll and keeps the grid above the upload panel, and save
// screenshots. Prints one JSON report line; the Rust test (tests/browser.rs) asserts it.
// Any console error fails the run, except the API's 401s before signing in and the deliberate
// 404 of a deleted thumbnail.
//
// Usage: node tests/browser/app.mjs BASE_URL KEY PHOTO_DIR OUT_DIR [DOCS_DIR]
//   PHOTO_DIR holds chelsea.jpg, page.png (text "histogram") and china_gps.jpg (camera EXIF);
//   OUT_DIR gets app-grid.png, app-detail.png, app-phone.png on every run.
//   IMGPIPE_SCREENSHOTS_TO_DOCS=1 (environment) also copies the grid and detail shots to DOCS_DIR
//   as screenshot-grid.png and screenshot-detail.png, the README's pictures. Without it DOCS_DIR
//   is left alone, so a test run does not rewrite tracked files; set it only to refresh them.
import { chromium } from "playwright-core";
import path from "node:path";
import fs from "node:fs";

const [base, key, photoDir, outDir, docsDir] = process.argv.slice(2);
if (!base || !key || !photoDir || !outDir) {
  console.error("usage: app.mjs BASE_URL KEY PHOTO_DIR OUT_DIR [DOCS_DIR]");
  process.exit(2);
}
const CAT = "chelsea.jpg", PAGE = "page.png", CAMERA = "china_gps.jpg";
const WORD = "histogram";
const EDITOR_TAG = "Frontpage";
const T = { long: 120_000, short: 15_000 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const report = { steps: [], errors: [], console_errors: [] };
let signedIn = false;
let deletedThumb = null;

function watch(page, name) {
  page.on("pageerror", (e) => report.errors.push(`${name}: ${e.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const url = msg.location().url || "";
    const pathname = url ? new URL(url, base).pathname : "";
    const refusedBeforeSignIn = !signedIn && / status of 401 /.test(msg.text()) && pathname.startsWith("/api/");
    const deliberate404 = deletedThumb && url.startsWith(deletedThumb) && / status of 404 /.test(msg.text());
    if (!refusedBeforeSignIn && !deliberate404) report.console_errors.push(`${name}: ${msg.text()} (${url})`);
  });
}

const cards = (page) => page.locator("article.card");
const cardOf = (page, name) => page.locator(`article.card:has(.name:text-is("${name}"))`);
const names = (page) => page.locator("article.card .name").allTextContents();
const waitCount = (page, n, timeout = T.short) =>
  page.waitForFunction((n) => document.querySelectorAll("article.card").length === n, n, { timeout });
const step = (s) => report.steps.push(s);

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  watch(page, "A");
  await page.goto(base + "/");
  await page.locator("#signin").waitFor({ state: "visible", timeout: T.short });
  await page.fill("#key", key);
  signedIn = true;
  await page.click('#signin button[type="submit"]');
  await page.locator("#signin").waitFor({ state: "hidden", timeout: T.short });
  await page.locator("#signout").waitFor({ state: "visible", timeout: T.short });
  report.signed_in = true;
  await page.locator("#empty").waitFor({ state: "visible", timeout: T.short });
  report.empty_text = (await page.locator("#empty").textContent()).trim();
  step("signed in");

  // A second page of the same browser (its cookie), open before the uploads.
  const other = await context.newPage();
  watch(other, "B");
  await other.goto(base + "/");
  await other.locator("#empty").waitFor({ state: "visible", timeout: T.short });
  await other.evaluate(() => { window.__notReloaded = true; });

  // Record what the upload lines and the cards show while they change.
  const record = () => {
    window.__seen = { uploads: {}, stages: {} };
    new MutationObserver(() => {
      for (const li of document.querySelectorAll("#upload-list li")) {
        const bar = li.querySelector("progress");
        const seen = window.__seen.uploads[li.dataset.name] ||= { states: [], max_fraction: 0 };
        if (!seen.states.includes(li.dataset.state)) seen.states.push(li.dataset.state);
        if (bar) seen.max_fraction = Math.max(seen.max_fraction, bar.value / bar.max);
      }
      for (const c of document.querySelectorAll("article.card")) {
        const name = c.querySelector(".name").textContent;
        const s = window.__seen.stages[name] ||= [];
        const label = c.querySelector(".status").textContent;
        if (s[s.length - 1] !== label) s.push(label);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  };
  await page.evaluate(record);
  await other.evaluate(record);
  await page.evaluate(() => { window.__notReloaded = true; });

  await page.setInputFiles("#files", [CAT, PAGE, CAMERA].map((f) => path.join(photoDir, f)));
  await page.locator("#uploads").waitFor({ state: "visible", timeout: T.short });
  report.upload_lines = await page.locator("#upload-list li").count();
  await page.waitForFunction(() => document.querySelectorAll('article.card[data-status="done"]').length === 3, null, { timeout: T.long });
  await other.waitForFunction(() => document.querySelectorAll('article.card[data-status="done"]').length === 3, null, { timeout: T.short });
  report.not_reloaded = await page.evaluate(() => window.__notReloaded === true);
  report.other_not_reloaded = await other.evaluate(() => window.__notReloaded === true);
  report.other_names = (await names(other)).sort();
  // The finished lines leave the upload log.
  await page.locator("#uploads").waitFor({ state: "hidden", timeout: T.short });
  const seen = await page.evaluate(() => window.__seen);
  report.uploads = seen.uploads;
  report.stages = seen.stages;
  report.other_stages = (await other.evaluate(() => window.__seen)).stages;
  step("uploaded");

  // The cat's card: thumbnail (1x: the 256 px thumb), alt text, tags, category chip.
  const cat = cardOf(page, CAT);
  const thumb = cat.locator(".thumb img");
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumb.elementHandle(), { timeout: T.short });
  report.thumb_width = await thumb.evaluate((img) => img.naturalWidth);
  report.thumb_srcset = await thumb.getAttribute("srcset");
  report.thumb_alt = await thumb.getAttribute("alt");
  report.tags = (await cat.locator(".tag:not(.category)").allTextContents()).map((t) => t.replace(/\s[\d.]+$/, ""));
  report.category_chips = await cat.locator(".tag.category").allTextContents();
  report.placeholder = await cat.locator(".thumb").evaluate((t) => getComputedStyle(t).backgroundImage.startsWith('url("data:image/png'));
  await page.screenshot({ path: path.join(outDir, "app-grid.png") });

  // The cat's first category chip filters (a button), and so does a category facet; the back
  // button undoes each.
  const chip = cat.locator(".tag.category").first();
  report.chip = await chip.textContent();
  await chip.click();
  await waitCount(page, 1);
  report.chip_names = await names(page);
  await page.goBack();
  await waitCount(page, 3);
  const facet = page.locator('#facets button.facet[data-key="tag"][data-value="animal"]');
  await facet.click();
  await waitCount(page, 1);
  report.category_filter = { url: new URL(page.url()).search, names: await names(page) };
  await page.goBack();
  await waitCount(page, 3);
  report.back_names = (await names(page)).length;
  // The status facet: failed is absent, done filters.
  report.status_facets = await page.locator('#facets button.facet[data-key="status"]').evaluateAll((bs) => bs.map((b) => b.dataset.value));
  await page.locator('#facets button.facet[data-key="status"][data-value="done"]').click();
  await page.waitForURL(/status=done/, { timeout: T.short });
  await waitCount(page, 3);
  report.status_filter = { url: new URL(page.url()).search, count: await cards(page).count() };
  // The camera facet (china_gps.jpg has EXIF) on top of the status.
  const camera = page.locator('#facets button.facet[data-key="camera"]').first();
  report.camera_facet = await camera.getAttribute("data-value");
  await camera.click();
  await waitCount(page, 1);
  report.camera_names = await names(page);
  await page.goto(base + "/");
  await waitCount(page, 3);
  step("facets");

  // Search a word read in the picture.
  await page.fill("#search", WORD);
  await waitCount(page, 1);
  report.search = { word: WORD, names: await names(page), text: await page.locator("article.card .text").allTextContents(), url: new URL(page.url()).search };
  await page.fill("#search", "");
  await waitCount(page, 3);
  step("search");

  // The detail view of the page, with its text boxes.
  await cardOf(page, PAGE).locator("button.open").click();
  const dialog = page.locator("dialog#detail");
  await dialog.waitFor({ state: "visible", timeout: T.short });
  await page.waitForFunction(() => { const i = document.getElementById("detail-img"); return i.complete && i.naturalWidth > 0; }, null, { timeout: T.short });
  const pageId = new URL(page.url()).searchParams.get("image");
  report.detail = {
    url_has_image: Boolean(pageId),
    title: await page.locator("#detail-title").textContent(),
    boxes: await page.locator("#boxes .box").count(),
    boxes_inside: await page.evaluate(() => {
      const f = document.querySelector("#detail-figure .frame").getBoundingClientRect();
      return [...document.querySelectorAll("#boxes .box")].every((b) => {
        const r = b.getBoundingClientRect();
        return r.width > 0 && r.left >= f.left - 1 && r.right <= f.right + 1 && r.top >= f.top - 1 && r.bottom <= f.bottom + 1;
      });
    }),
    text: await page.locator("#detail-info .ocr li").allTextContents(),
    model: await page.locator('#detail-info dt:text-is("Model") + dd').textContent().catch(() => null),
    download: await page.locator('#detail-info a:text-is("Download original")').getAttribute("href"),
  };

  // An editor tag: added, kept over a reload and a reprocess.
  await page.fill("#editor-tag", EDITOR_TAG);
  await page.press("#editor-tag", "Enter");
  await page.locator(`#detail-info .tag.editor:has-text("${EDITOR_TAG}")`).waitFor({ timeout: T.short });
  await page.evaluate(() => document.activeElement.blur());
  await page.screenshot({ path: path.join(outDir, "app-detail.png") });
  // ←/→ move between images, Esc closes. The three uploads race, so the page may be the last
  // card: then step left and back.
  const [there, back] = (await page.locator("#detail-next").isDisabled()) ? ["ArrowLeft", "ArrowRight"] : ["ArrowRight", "ArrowLeft"];
  await page.locator("#detail-close").focus();
  await page.keyboard.press(there);
  await page.waitForFunction((id) => new URL(location.href).searchParams.get("image") !== id, pageId, { timeout: T.short });
  await page.keyboard.press(back);
  await page.waitForFunction((id) => new URL(location.href).searchParams.get("image") === id, pageId, { timeout: T.short });
  report.arrows = true;
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden", timeout: T.short });
  await page.waitForURL((u) => !u.searchParams.has("image"), { timeout: T.short });
  report.esc_closes = true;
  await page.goto(`${base}/?image=${pageId}`);
  await dialog.waitFor({ state: "visible", timeout: T.short });
  report.editor_tag_after_reload = await page.locator("#detail-info .tag.editor").allTextContents();
  const taggedAt = (id) => page.evaluate(async (id) => (await (await fetch(`/api/images/${id}`)).json()).stages?.tagged || null, id);
  const taggedBefore = await taggedAt(pageId);
  await page.click("#reprocess");
  // The card may pass through "pending" faster than the stream reports it: the stage time
  // is the proof that the picture was tagged again.
  await page.waitForFunction(() => document.querySelector("#detail-info .status")?.classList.contains("done") === false, null, { timeout: 5_000 })
    .then(() => { report.reprocess_left_done = true; }, () => { report.reprocess_left_done = false; });
  await page.waitForFunction(async ([id, before]) => {
    const doc = await (await fetch(`/api/images/${id}`)).json();
    return doc.status === "done" && doc.stages?.tagged && doc.stages.tagged !== before;
  }, [pageId, taggedBefore], { timeout: T.long, polling: 250 });
  await page.waitForFunction(() => document.querySelector("#detail-info .status")?.classList.contains("done"), null, { timeout: T.short });
  const taggedAfter = await taggedAt(pageId);
  report.reprocess_tagged = { before: taggedBefore, after: taggedAfter, later: Date.parse(taggedAfter) > Date.parse(taggedBefore) };
  report.editor_tag_after_reprocess = await page.locator("#detail-info .tag.editor").allTextContents();
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden", timeout: T.short });
  await page.fill("#search", EDITOR_TAG.toLowerCase());
  await waitCount(page, 1);
  report.editor_tag_search = await names(page);
  await page.goto(`${base}/?tag=${EDITOR_TAG.toUpperCase()}`);
  await waitCount(page, 1);
  report.editor_tag_filter = await names(page);
  await page.goto(base + "/");
  await waitCount(page, 3);
  step("editor tag");

  // Delete the camera photo from its detail view (after the confirmation).
  const doomed = cardOf(page, CAMERA);
  const doomedThumb = await doomed.locator(".thumb img").getAttribute("src");
  await doomed.locator("button.open").click();
  await dialog.waitFor({ state: "visible", timeout: T.short });
  let confirmed = null;
  page.once("dialog", (d) => { confirmed = d.message(); d.accept(); });
  await page.click("#delete");
  await waitCount(page, 2);
  await waitCount(other, 2);
  deletedThumb = new URL(doomedThumb, base).href;
  report.delete = {
    confirmed: Boolean(confirmed),
    names: (await names(page)).sort(),
    other_names: (await names(other)).sort(),
    thumb_status: await page.evaluate(async (u) => (await fetch(u, { cache: "no-store" })).status, deletedThumb),
  };
  if (await dialog.isVisible()) { await page.keyboard.press("Escape"); await dialog.waitFor({ state: "hidden" }); }
  step("delete");

  // A second load: every thumbnail from the browser cache.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  const requests = new Map();
  cdp.on("Network.requestWillBeSent", (e) => { if (/\/thumb(\?|$)/.test(e.request.url)) requests.set(e.requestId, { cached: false }); });
  cdp.on("Network.requestServedFromCache", (e) => { if (requests.has(e.requestId)) requests.get(e.requestId).cached = true; });
  cdp.on("Network.responseReceived", (e) => {
    const r = requests.get(e.requestId);
    if (r && (e.response.fromDiskCache || e.response.fromMemoryCache)) r.cached = true;
  });
  await page.goto(base + "/");
  await waitCount(page, 2);
  await page.waitForFunction(() => [...document.querySelectorAll("article.card .thumb img")].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: T.short });
  const list = [...requests.values()];
  // Blink may serve an image from its memory cache without any network event: a thumbnail on
  // the page that no request fetched from the server came from the cache too.
  report.reload_thumbs = {
    shown: await page.evaluate(() => document.querySelectorAll("article.card .thumb img").length),
    requested: list.length,
    from_cache: list.filter((r) => r.cached).length,
    fetched: list.filter((r) => !r.cached).length,
  };
  step("cache");

  // A phone: no horizontal scroll, the grid above the upload panel, a clear refusal.
  await page.setViewportSize({ width: 360, height: 740 });
  await page.setInputFiles("#files", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a picture\n") });
  await page.locator("#uploads").waitFor({ state: "visible", timeout: T.short });
  report.phone = await page.evaluate(() => {
    const first = document.querySelector("article.card").getBoundingClientRect();
    const panel = document.getElementById("uploads").getBoundingClientRect();
    return {
      scroll_width: document.documentElement.scrollWidth,
      first_card_top: Math.round(first.top),
      panel_top: Math.round(panel.top),
      panel_position: getComputedStyle(document.getElementById("uploads")).position,
      refusal: document.querySelector('#upload-list li[data-state="rejected"] .state')?.textContent || null,
    };
  });
  await page.screenshot({ path: path.join(outDir, "app-phone.png") });
  await cardOf(page, PAGE).locator("button.open").click();
  await dialog.waitFor({ state: "visible", timeout: T.short });
  report.phone.detail_scroll_width = await page.evaluate(() => Math.max(document.documentElement.scrollWidth, document.getElementById("detail").scrollWidth));
  step("phone");

  if (docsDir && process.env.IMGPIPE_SCREENSHOTS_TO_DOCS === "1") {
    fs.mkdirSync(docsDir, { recursive: true });
    fs.copyFileSync(path.join(outDir, "app-grid.png"), path.join(docsDir, "screenshot-grid.png"));
    fs.copyFileSync(path.join(outDir, "app-detail.png"), path.join(docsDir, "screenshot-detail.png"));
  }
} catch (e) {
  report.failure = String(e && e.stack || e);
} finally {
  console.log(JSON.stringify(report));
  await browser.close();
}
if (report.failure) process.exit(1);
