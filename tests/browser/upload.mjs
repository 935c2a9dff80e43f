// Drives the imgpipe page in Debian's headless Chromium: sign in with KEY in the form the page
// shows when the API wants a key, choose a photo in the file picker, let the page upload it
// through its presigned URL, and wait for the thumbnail and its tags. With TEXT_PHOTO and WORD,
// also upload a picture with printed text, type WORD in the search box and expect that picture
// alone, then click the first photo's first category chip and expect it alone. Any console error
// (a CSP violation, a failed load) fails the run, except the API's 401s before signing in, which
// are how the page learns it must ask for a key.
// Usage: node tests/browser/upload.mjs BASE_URL KEY PHOTO EXPECTED_LABEL[,LABEL...] [SCREENSHOT]
//        [TEXT_PHOTO WORD]
import { chromium } from "playwright-core";

const [base, key, photo, expected, screenshot, textPhoto, word] = process.argv.slice(2);
if (!base || !key || !photo || !expected) {
  console.error("usage: upload.mjs BASE_URL KEY PHOTO LABELS [SCREENSHOT] [TEXT_PHOTO WORD]");
  process.exit(2);
}
const labels = expected.split(",");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const consoleErrors = [];
  let signedIn = false;
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const url = msg.location().url || "";
    const refusedBeforeSignIn = !signedIn && / status of 401 /.test(msg.text())
      && new URL(url, base).pathname.startsWith("/api/");
    if (!refusedBeforeSignIn) consoleErrors.push(`${msg.text()} (${url})`);
  });
  await page.goto(base + "/");
  // Without a key the API answers 401 and the page asks for one.
  await page.locator("#signin").waitFor({ state: "visible", timeout: 10_000 });
  await page.fill("#key", key);
  signedIn = true;
  await page.click('#signin button[type="submit"]');
  await page.locator("#signin").waitFor({ state: "hidden", timeout: 10_000 });
  await page.locator("#signout").waitFor({ state: "visible", timeout: 10_000 });
  await page.setInputFiles("#files", photo);
  const card = page.locator('article.card[data-status="done"]');
  await card.first().waitFor({ timeout: 60_000 });
  const thumb = card.first().locator("img");
  await thumb.waitFor();
  // The thumbnail really loaded (not a broken image).
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumb.elementHandle(), { timeout: 10_000 });
  const width = await thumb.evaluate((img) => img.naturalWidth);
  const tags = await card.first().locator(".tag").allTextContents();
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  const found = tags.some((t) => labels.includes(t));
  const report = { signed_in: true, thumb_width: width, tags, errors, console_errors: consoleErrors };
  if (textPhoto) {
    await page.setInputFiles("#files", textPhoto);
    await page.locator('article.card[data-status="done"]').nth(1).waitFor({ timeout: 60_000 });
    await page.fill("#search", word);
    const names = () => page.locator("article.card .name").allTextContents();
    await page.waitForFunction(() => document.querySelectorAll("article.card").length === 1, null, { timeout: 10_000 });
    report.search = { word, names: await names(), text: await page.locator("article.card .text").allTextContents() };
    await page.fill("#search", "");
    await page.waitForFunction(() => document.querySelectorAll("article.card").length === 2, null, { timeout: 10_000 });
    const chip = page.locator(`article.card:has-text("${photo.split("/").pop()}") .tag.category`).first();
    report.category = await chip.textContent();
    await chip.click();
    await page.waitForFunction(() => document.querySelectorAll("article.card").length === 1, null, { timeout: 10_000 });
    report.category_names = await names();
  }
  console.log(JSON.stringify(report));
  if (!found) throw new Error(`none of ${labels} in tags ${tags}`);
  if (errors.length) throw new Error(`page errors: ${errors}`);
  if (consoleErrors.length) throw new Error(`console errors: ${consoleErrors.join("; ")}`);
} finally {
  await browser.close();
}
