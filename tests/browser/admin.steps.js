// admin.steps.js -- the back office (/admin) in the browser: page weight
// and accessibility, a CSV upload with one bad row whose error shows,
// training that starts and completes, a tenant and a key made with the
// admin key.  Run by shop.test.js with its page and server.
"use strict";
const assert = require("assert");
const fs = require("fs");
const path = require("path");

module.exports = async function ({ browser, base, sk, ADMIN, step, ready, shot, a11y, weigh, tmp }) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.setDefaultTimeout(30000);
  const weight = weigh(page);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await step("back office loads; labels, contrast, weight under 300 KB", async () => {
    await page.goto(base + "/admin");
    await ready(page, "admin");
    console.log("     back office weight: " + weight.bytes + " bytes");
    assert(weight.bytes > 0 && weight.bytes < 300 * 1024, "weight " + weight.bytes);
    assert.deepStrictEqual(await a11y(page), []);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    assert.strictEqual(await page.evaluate(() => document.activeElement.id), "sk");
    await page.keyboard.type(sk);
    await page.keyboard.press("Tab"); // change event stores it
  });

  await step("CSV upload with one bad row shows that row's error", async () => {
    const csv = path.join(tmp, "upload.csv");
    fs.writeFileSync(csv,
      "item_id,title,category,price,in_stock\n" +
      "up-1,\"Trail runner, blue\",shoes/running,89.5,true\n" +
      "up-2,Canvas tote,bags,not-a-price,true\n" +
      "up-3,Wool socks,clothing/socks,12,false\n");
    const input = await page.$("#file");
    await input.uploadFile(csv);
    await page.click("#upload button[type=submit]");
    await page.waitForFunction(() => /accepted/.test(document.querySelector("#up-sum").textContent));
    assert.strictEqual(await page.$eval("#up-sum", (e) => e.textContent), "2 rows accepted, 1 rejected.");
    const rows = await page.$$eval("#report tbody tr", (trs) => trs.map((tr) =>
      [...tr.children].map((td) => td.textContent)));
    assert.strictEqual(rows.length, 1);
    assert.deepStrictEqual(rows[0].slice(0, 3), ["3", "up-2", "price"]);
    assert(rows[0][3].length > 0, "a reason");
    await shot(page, "admin-upload");
  });

  await step("catalog find and edit", async () => {
    await page.type("#bq", "up-1");
    await page.click("#browse button[type=submit]");
    await page.waitForSelector("#items tbody tr");
    assert.strictEqual(await page.$eval("#items tbody tr td", (e) => e.textContent), "up-1");
    await page.click('#items button[aria-label="Edit up-1"]');
    await page.$eval("#e-price", (e) => { e.value = ""; });
    await page.type("#e-price", "79.25");
    await page.click("#edit button[type=submit]");
    await page.waitForFunction(() => /Saved up-1/.test(document.querySelector("#status").textContent));
    const r = await fetch(base + "/api/v1/items/up-1", { headers: { Authorization: "Bearer " + sk } });
    assert.strictEqual((await r.json()).price, 79.25);
    await shot(page, "admin-catalog");
  });

  await step("training starts and completes; history lists the version", async () => {
    const before = await page.$$eval("#history tbody tr", (t) => t.length);
    await page.click("#train");
    await page.waitForFunction(() => /^(done|failed)/.test(document.querySelector("#job-state").textContent),
      { timeout: 120000 });
    assert.strictEqual(await page.$eval("#job-state", (e) => e.textContent), "done");
    assert.strictEqual(await page.$eval("#job-progress", (e) => e.value), 1);
    await page.waitForFunction((n) => document.querySelectorAll("#history tbody tr").length > n, {}, before);
    await shot(page, "admin-training");
  });

  await step("tenants and keys with the admin key", async () => {
    await page.type("#ak", ADMIN);
    await page.type("#t-name", "browser-shop");
    await page.click("#tenant button[type=submit]");
    await page.waitForFunction(() => /browser-shop created/.test(document.querySelector("#key-out").textContent));
    await page.select("#k-kind", "public");
    await page.click("#key button[type=submit]");
    await page.waitForFunction(() => /kn_pk_/.test(document.querySelector("#key-out").textContent));
    const key = (await page.$eval("#key-out", (e) => e.textContent)).split(": ").pop();
    let r = await fetch(base + "/api/v1/trending", { headers: { Authorization: "Bearer " + key } });
    assert.strictEqual(r.status, 200);
    await page.type("#r-tenant", "browser-shop");
    await page.type("#r-key", key);
    await page.click("#revoke button[type=submit]");
    await page.waitForFunction(() => /revoked/.test(document.querySelector("#key-out").textContent));
    r = await fetch(base + "/api/v1/trending", { headers: { Authorization: "Bearer " + key } });
    assert.strictEqual(r.status, 401);
    await shot(page, "admin-tenants");
    assert.deepStrictEqual(errors, []);
  });
  await page.close();
};
