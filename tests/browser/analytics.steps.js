// analytics.steps.js -- the back office's search analytics and A/B
// experiment panels in the browser: searches made through the API show up
// as top and zero-result queries; an experiment created in the page
// serves recommendations with a variant, and its report lists the
// exposures per variant; stopping it from the page.  Run by shop.test.js
// with its page and server.
"use strict";
const assert = require("assert");

module.exports = async function ({ browser, base, sk, step, ready, shot, a11y }) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.setDefaultTimeout(30000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const api = async (method, p, body) => {
    const res = await fetch(base + p, {
      method, headers: { Authorization: "Bearer " + sk, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(10000)
    });
    return { status: res.status, body: await res.json() };
  };
  const texts = (sel) => page.$$eval(sel, (rs) => rs.map((r) => r.textContent));

  await step("search analytics panel shows top and zero-result queries", async () => {
    for (const q of ["Waterproof boot", "waterproof  boot", "zzqxv nothing"])
      assert.strictEqual((await api("POST", "/api/v1/search", { query: q, user_id: "u0003" })).status, 200);
    await page.goto(base + "/admin");
    await ready(page, "admin");
    await page.type("#sk", sk);
    await page.keyboard.press("Tab"); // change event stores it
    await page.$eval("#an-days", (e) => { e.value = ""; });
    await page.type("#an-days", "30");
    await page.click("#an-form button[type=submit]");
    await page.waitForFunction(() => [...document.querySelectorAll("#an-top tbody tr")]
      .some((r) => r.cells[0].textContent === "waterproof boot"));
    const top = await texts("#an-top tbody tr");
    const boot = top.find((t) => t.startsWith("waterproof boot"));
    assert(/^waterproof boot[2-9]/.test(boot), "top row: " + boot);
    const few = await texts("#an-few tbody tr td:first-child");
    assert(few.includes("zzqxv nothing"), "few: " + few);
    assert(/searches by \d+ shoppers/.test(await page.$eval("#an-sum", (e) => e.textContent)));
  });

  await step("experiment created in the page reports its variants", async () => {
    await page.type("#ex-name", "bo-test");
    await page.$eval("#ex-variants", (e) => { e.value = ""; });
    await page.type("#ex-variants", "A, B:1");
    await page.click("#ex-form button[type=submit]");
    await page.waitForFunction(() => [...document.querySelectorAll("#ex-list tbody tr")]
      .some((r) => r.cells[0].textContent === "bo-test" && r.cells[1].textContent === "running"));
    const seen = new Set();
    for (const u of ["u0001", "u0002", "u0003", "u0004"]) {
      const r = await api("POST", "/api/v1/recommendations", { user_id: u, count: 4, experiment: "bo-test" });
      assert.strictEqual(r.status, 200);
      assert(r.body.experiment && ["A", "B"].includes(r.body.experiment.variant), JSON.stringify(r.body.experiment));
      seen.add(r.body.experiment.variant);
    }
    await page.click("button[aria-label='Report of bo-test']");
    await page.waitForFunction(() => !document.querySelector("#ex-report").hidden &&
      document.querySelectorAll("#ex-rep tbody tr").length === 2);
    const rows = await page.$$eval("#ex-rep tbody tr", (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
    assert.strictEqual(rows[0][0], "A (control)");
    assert.strictEqual(Number(rows[0][1]) + Number(rows[1][1]), 4, JSON.stringify(rows));
    assert(/\[.*%, .*%\]/.test(rows[0][3]), "interval: " + rows[0][3]);
    assert(/rough/.test(await page.$eval("#ex-note", (e) => e.textContent)));
    assert.deepStrictEqual(await a11y(page), []);
    await shot(page, "admin-analytics");
  });

  await step("experiment stopped from the page", async () => {
    await page.click("button[aria-label='Stop bo-test']");
    await page.waitForFunction(() => [...document.querySelectorAll("#ex-list tbody tr")]
      .some((r) => r.cells[0].textContent === "bo-test" && r.cells[1].textContent === "stopped"));
    const r = await api("POST", "/api/v1/recommendations", { user_id: "u0001", experiment: "bo-test" });
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.body.experiment, undefined);
    assert.deepStrictEqual(errors, []);
  });
  await page.close();
};
