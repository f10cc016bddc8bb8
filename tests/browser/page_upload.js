// Drives the web page in Debian's Chromium (puppeteer-core over the DevTools protocol) as a user
// would: waits for the first search, clicks "Random item", chooses a file in the upload field,
// picks a label, and prints what the page showed as one JSON document.
// Usage: node page_upload.js URL IMAGE_FILE LABEL
const puppeteer = require("puppeteer-core");

async function hits(page) {
  try {
    await page.waitForFunction(
        () => document.querySelectorAll(".hit.neighbour").length > 0 &&
              [...document.querySelectorAll(".hit.neighbour img")].every((i) => i.dataset.loaded),
        {timeout: 20000});
  } catch (e) {
    const shown = await page.$eval("#error", (el) => el.textContent);
    throw new Error("no neighbours shown (the page says: '" + shown + "'): " + e.message);
  }
  return page.evaluate(() => [...document.querySelectorAll(".hit.neighbour")].map((d) => ({
    key: d.title,
    caption: d.querySelector(".caption").textContent,
    loaded: d.querySelector("img").dataset.loaded,
    width: d.querySelector("img").naturalWidth,
    detail: d.querySelector(".detail").textContent,
  })));
}

async function clearHits(page) {
  await page.evaluate(() => { document.getElementById("hits").innerHTML = ""; });
}

(async () => {
  const [url, file, label] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const out = {};
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url, {waitUntil: "load"});
    out.first = await hits(page);
    out.first_key = await page.$eval("#key", (e) => e.value);
    out.pad_hidden = await page.$eval("#pad-box", (e) => e.hidden);
    out.info = await page.$eval("#info", (e) => e.textContent);

    await clearHits(page);
    await page.click("#random-key");
    out.random = await hits(page);
    out.random_key = await page.$eval("#key", (e) => e.value);
    out.error_after_random = await page.$eval("#error", (e) => e.textContent);

    await clearHits(page);
    const input = await page.$("#file");
    await input.uploadFile(file);
    out.upload = await hits(page);
    out.query_caption = await page.$eval("#query-caption", (e) => e.textContent);

    out.labels = await page.$$eval("#label option", (os) => os.map((o) => o.value));
    await clearHits(page);
    await page.select("#label", label);
    await page.click("#search-key");
    out.filtered = await hits(page);
    out.error = await page.$eval("#error", (e) => e.textContent);
    out.page_errors = errors;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((e) => {
  process.stderr.write(String(e.stack || e) + "\n");
  process.exit(1);
});
