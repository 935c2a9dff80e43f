// Drives the imgpipe page in Debian's headless Chromium: choose a photo in the file picker, let
// the page upload it through its presigned URL, and wait for the thumbnail and its tags.
// Usage: node tests/browser/upload.mjs BASE_URL PHOTO EXPECTED_LABEL[,LABEL...] [SCREENSHOT]
import { chromium } from "playwright-core";

const [base, photo, expected, screenshot] = process.argv.slice(2);
if (!base || !photo || !expected) {
  console.error("usage: upload.mjs BASE_URL PHOTO LABELS [SCREENSHOT]");
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
  await page.goto(base + "/");
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
  console.log(JSON.stringify({ thumb_width: width, tags, errors }));
  if (!found) throw new Error(`none of ${labels} in tags ${tags}`);
  if (errors.length) throw new Error(`page errors: ${errors}`);
} finally {
  await browser.close();
}
