// charts.steps.js -- the back office's live figures and model history
// (services/knyttd/www/admin/charts.js) in the browser: with the secret
// key typed in, the request, latency and error charts fill from
// GET /api/v1/stats with the traffic this run made, and the model chart
// has a point per stored version.  Run by shop.test.js after
// admin.steps.js (which trains a model).
"use strict";
const assert = require("assert");

module.exports = async function ({ browser, base, sk, step, ready, shot, a11y, weigh }) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.setDefaultTimeout(30000);
  const weight = weigh(page);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await step("live charts draw the shop's requests, latency and errors", async () => {
    await page.goto(base + "/admin");
    await ready(page, "admin");
    // traffic of this second on: a few answers and one refusal (404)
    for (let i = 0; i < 5; i++) {
      const r = await fetch(base + "/api/v1/trending", { headers: { Authorization: "Bearer " + sk } });
      assert.strictEqual(r.status, 200);
    }
    const nf = await fetch(base + "/api/v1/items/no-such-item", { headers: { Authorization: "Bearer " + sk } });
    assert.strictEqual(nf.status, 404);
    await page.type("#sk", sk);
    await page.keyboard.press("Tab"); // change event: polling starts
    // the second of the traffic above is shown once it is over
    await page.waitForFunction(() => {
      const m = /requests\/s ([\d.]+)/.exec(document.querySelector("#ch-req").getAttribute("aria-label"));
      const s = document.querySelector("#live-sum").textContent;
      return m && /Last 10 s: [\d.]+ requests\/s/.test(s) && !/: 0\.0 requests/.test(s) &&
        /[1-9]\d* refused/.test(s);
    }, { timeout: 20000 });
    for (const id of ["#ch-req", "#ch-lat", "#ch-err"]) {
      const pts = await page.$eval(id, (c) => Number(c.dataset.points));
      assert(pts >= 100, id + " drew " + pts + " points");
      // something besides the background was drawn in the plot area
      const inked = await page.$eval(id, (c) => {
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++;
        return n;
      });
      assert(inked > 200, id + " has " + inked + " drawn pixels");
    }
    const lat = await page.$eval("#ch-lat", (c) => c.getAttribute("aria-label"));
    assert(/^Latency: p50 [\d.]+ ms, p95 [\d.]+ ms$/.test(lat), lat);
    assert.deepStrictEqual(await a11y(page), []);
    assert(weight.bytes < 300 * 1024, "weight " + weight.bytes);
    await shot(page, "admin-live");
  });

  await step("model history chart has a point per version", async () => {
    const m = await (await fetch(base + "/api/v1/models", { headers: { Authorization: "Bearer " + sk } })).json();
    const n = (m.versions || []).length;
    assert(n >= 1, "a trained version (admin steps)");
    await page.waitForFunction((k) => Number(document.querySelector("#ch-loss").dataset.points) === k, {}, n);
    const label = await page.$eval("#ch-loss", (c) => c.getAttribute("aria-label"));
    assert(/^Training loss by version: loss [\d.k]+$/.test(label), label);
    assert.strictEqual(await page.$eval("#ch-ttime", (c) => Number(c.dataset.points)), n);
    assert.deepStrictEqual(errors, []);
  });
  await page.close();
};
