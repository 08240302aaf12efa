// shop.test.js -- the storefront and back office of knyttd in a real
// browser: Debian's chromium driven by puppeteer-core (never downloads a
// browser).  Starts knyttd itself on 127.0.0.1 on a free port with a
// temporary store holding the generated demo shop (knytt demo: imported
// and trained), and stops it at the end.  Screenshots: build/browser-shots/.
// Usage: node shop.test.js ROOT (the checkout, with build/bin/knytt[d]).
"use strict";
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const assert = require("assert");
const puppeteer = require("puppeteer-core");

const ROOT = path.resolve(process.argv[2] || "../..");
const SHOTS = path.join(ROOT, "build/browser-shots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ADMIN = "browser-test-admin-key-0123456789";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "knytt-browser-"));
let server = null, browser = null;
const results = [];

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, "ok", Date.now() - t0]);
    console.log("ok   " + name + " (" + (Date.now() - t0) + " ms)");
  } catch (e) {
    results.push([name, "FAIL", Date.now() - t0]);
    console.log("FAIL " + name + ": " + (e && e.stack || e));
  }
}

function startServer() {
  const db = "sqlite:" + path.join(tmp, "shop.db");
  execFileSync(path.join(ROOT, "build/bin/knytt"), ["demo", "--db", db],
    { stdio: ["ignore", "ignore", "inherit"], timeout: 120000 });
  return new Promise((resolve, reject) => {
    server = spawn(path.join(ROOT, "build/bin/knyttd"),
      ["--listen", "127.0.0.1:0", "--db", db, "--quiet",
       "--www", path.join(ROOT, "services/knyttd/www"),
       "--pwhash-ops", "1", "--pwhash-mem", "64", "--threads", "4"],
      { env: { ...process.env, KNYTT_ADMIN_KEY: ADMIN }, stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    const timer = setTimeout(() => reject(new Error("knyttd did not start")), 15000);
    server.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on("exit", (c) => reject(new Error("knyttd exited " + c)));
  });
}

async function api(base, key, method, p, body) {
  const res = await fetch(base + p, {
    method, headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000)
  });
  return res.json();
}

// Bytes of every non-image answer while a page loads (page weight).
function weigh(page) {
  const w = { bytes: 0 };
  page.on("response", async (res) => {
    const t = res.request().resourceType();
    if (t === "image" || res.status() >= 300) return;
    try { w.bytes += (await res.buffer()).length; } catch (e) { /* navigation */ }
  });
  return w;
}

async function ready(page, hash) {
  await page.waitForFunction((h) => document.body.dataset.ready === h, { timeout: 30000 }, hash);
}
async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}
async function cardsIn(page, sel) {
  return page.$$eval(sel + " .card", (cs) => cs.map((c) => ({ id: c.dataset.id, cat: c.dataset.category })));
}

// Every form control has a label; every text has contrast 4.5:1 or more.
async function a11y(page) {
  return page.evaluate(() => {
    const bad = [];
    for (const e of document.querySelectorAll("input, select, textarea")) {
      if (e.type === "hidden") continue;
      if (!(e.labels && e.labels.length) && !e.getAttribute("aria-label")) bad.push("no label: #" + e.id);
    }
    const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const bgOf = (e) => {
      for (; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    for (const e of document.querySelectorAll("body *")) {
      if (!e.offsetParent || e.closest("svg")) continue;
      const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own) continue;
      const fg = lum(rgb(getComputedStyle(e).color)), bg = lum(bgOf(e));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) bad.push("contrast " + ratio.toFixed(2) + ": " + e.tagName + " " + e.textContent.slice(0, 30));
    }
    return bad;
  });
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const base = await startServer();
  const sk = (await api(base, ADMIN, "POST", "/api/v1/admin/tenants/default/keys", { kind: "secret" })).key;
  const pk = (await api(base, ADMIN, "POST", "/api/v1/admin/tenants/default/keys", { kind: "public" })).key;
  assert(sk && pk, "keys of the demo tenant");
  browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    userDataDir: path.join(tmp, "profile"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           "--disable-dev-shm-usage"]
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.setDefaultTimeout(30000);
  const weight = weigh(page);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await step("storefront loads; page weight under 300 KB before images", async () => {
    await page.goto(base + "/?key=" + pk);
    await ready(page, "/");
    await shot(page, "home");
    console.log("     storefront weight: " + weight.bytes + " bytes");
    assert(weight.bytes > 0 && weight.bytes < 300 * 1024, "weight " + weight.bytes);
    assert((await cardsIn(page, "#trending")).length > 0, "trending cards");
  });

  await step("accessibility: labels, contrast, keyboard to search", async () => {
    assert.deepStrictEqual(await a11y(page), []);
    await page.keyboard.press("Tab");
    assert.strictEqual(await page.evaluate(() => document.activeElement.className), "skip");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    assert.strictEqual(await page.evaluate(() => document.activeElement.id), "q");
  });

  let found = null;
  await step("search finds a product by a title word", async () => {
    await page.keyboard.type("beanie");
    await page.keyboard.press("Enter");
    await ready(page, "/search/beanie");
    const titles = await page.$$eval("#results .card .title", (a) => a.map((x) => x.textContent));
    assert(titles.length > 0 && /beanie/i.test(titles[0]), "first result: " + titles[0]);
    found = await page.$eval("#results .card", (c) => c.dataset.id);
    await shot(page, "search");
  });

  await step("a product page shows similar items", async () => {
    await page.click("#results .card .title");
    await ready(page, "/item/" + found);
    assert.strictEqual(await page.$eval("article.product", (a) => a.dataset.id), found);
    const sim = await cardsIn(page, "#similar");
    assert(sim.length > 0 && !sim.some((c) => c.id === found), "similar items");
    await shot(page, "product");
  });

  const user = "shopper-" + process.pid;
  await step("register and log in", async () => {
    await page.click("#login-link");
    await ready(page, "/login");
    await page.waitForSelector("#user");
    assert.deepStrictEqual(await a11y(page), []);
    await page.type("#user", user);
    await page.type("#password", "correct horse battery");
    await shot(page, "login");
    await page.click("#register");
    await ready(page, "/").catch(async (e) => {
      throw new Error("after register: " + await page.$eval("#status", (x) => x.textContent));
    });
    assert.match(await page.$eval("#who", (e) => e.textContent), new RegExp(user));
    assert.match(await page.$eval("#recommended-h", (e) => e.textContent), /Recommended for you/);
    // log out, then log in with the same password
    await page.click("#logout");
    await page.waitForSelector("#login-link:not([hidden])");
    await page.click("#login-link");
    await ready(page, "/login");
    await page.waitForSelector("#user");
    await page.type("#user", user);
    await page.type("#password", "correct horse battery");
    await page.keyboard.press("Enter");
    await ready(page, "/");
    assert.match(await page.$eval("#who", (e) => e.textContent), new RegExp(user));
  });

  await step("three clicks in one category move the recommendations toward it", async () => {
    const top = (c) => (c || "").split("/")[0];
    const before = (await cardsIn(page, "#recommended")).map((c) => top(c.cat));
    // the category least present among the recommendations
    const all = ["shoes", "clothing", "electronics", "home", "sports", "beauty", "books", "toys", "garden"];
    const r = await api(base, pk, "POST", "/api/v1/search", { query: "a", count: 100 });
    const cats = [...new Set((r.results || []).map((x) => top(x.category)).concat(all))];
    const count = (list, c) => list.filter((x) => x === c).length;
    cats.sort((a, b) => count(before, a) - count(before, b));
    let cat = null, items = [];
    for (const c of cats) {
      const s = await api(base, pk, "POST", "/api/v1/search", { query: c, count: 10, filters: { category: c } });
      items = (s.results || []).filter((x) => top(x.category) === c);
      if (items.length >= 3) { cat = c; break; }
    }
    assert(cat, "a category with three items");
    for (const it of items.slice(0, 3)) {
      await page.select("#f-cat", cat);
      await page.$eval("#q", (e) => { e.value = ""; });
      await page.type("#q", (it.title || "").split(" ").slice(-1)[0]);
      await page.click("#search button[type=submit]");
      await page.waitForSelector('#results .card[data-id="' + it.item_id + '"]');
      await page.click('#results .card[data-id="' + it.item_id + '"] .title');
      await ready(page, "/item/" + it.item_id);
    }
    await page.click(".brand");
    await ready(page, "/");
    const after = (await cardsIn(page, "#recommended")).map((c) => top(c.cat));
    console.log("     " + cat + ": " + count(before, cat) + " of " + before.length +
                " recommendations before, " + count(after, cat) + " of " + after.length + " after");
    assert(count(after, cat) > count(before, cat), "recommendations moved toward " + cat);
    await shot(page, "recommended-after-clicks");
  });

  await step("view, click, add-to-cart and purchase are sent as feedback", async () => {
    await page.click("#recommended .card .title");
    await page.waitForFunction(() => (document.body.dataset.ready || "").startsWith("/item/"));
    const id = await page.$eval("article.product", (a) => a.dataset.id);
    await page.click("#add-to-cart");
    await page.waitForFunction(() => /Added to cart/.test(document.querySelector("#status").textContent));
    await page.click("#buy");
    await page.waitForFunction(() => /Thank you/.test(document.querySelector("#status").textContent));
    const u = await api(base, sk, "GET", "/api/v1/users/" + user + "?history=10");
    const mine = (u.history || []).filter((h) => h.item_id === id).map((h) => h.interaction_type);
    for (const t of ["click", "view", "add_to_cart", "purchase"])
      assert(mine.includes(t), t + " of " + id + " in " + JSON.stringify(mine));
    await page.click(".brand");
    await ready(page, "/");
  });

  await step("favorites persist across reload", async () => {
    const id = await page.$eval("#recommended .card", (c) => c.dataset.id);
    await page.click('#recommended .card[data-id="' + id + '"] .heart');
    await page.waitForSelector('#recommended .card[data-id="' + id + '"] .heart[aria-pressed="true"]');
    await page.goto(base + "/#/favorites");
    await page.reload();
    await ready(page, "/favorites");
    const favs = await cardsIn(page, "#favorites");
    assert(favs.some((c) => c.id === id), "favorite listed after reload");
    await page.waitForSelector('#favorites .card[data-id="' + id + '"] .heart[aria-pressed="true"]');
    await shot(page, "favorites");
  });

  if (fs.existsSync(path.join(__dirname, "admin.steps.js")))
    await require("./admin.steps.js")({ page, base, sk, ADMIN, step, ready, shot, a11y, weigh, tmp, browser });
  if (fs.existsSync(path.join(__dirname, "analytics.steps.js")))
    await require("./analytics.steps.js")({ base, sk, step, ready, shot, a11y, browser });
  await require("./charts.steps.js")({ browser, base, sk, step, ready, shot, a11y, weigh });

  await step("no script errors in the pages", async () => {
    assert.deepStrictEqual(errors, []);
  });
}

main().catch((e) => { console.log("FAIL setup: " + (e && e.stack || e)); results.push(["setup", "FAIL"]); })
  .finally(async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) { server.kill("SIGTERM"); }
    fs.rmSync(tmp, { recursive: true, force: true });
    const failed = results.filter((r) => r[1] !== "ok").length;
    console.log("browser tests: " + (results.length - failed) + " passed, " + failed + " failed; screenshots in " + SHOTS);
    process.exit(failed ? 1 : 0);
  });
