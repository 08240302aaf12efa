/* charts.js -- the back office's live figures and model history, drawn on
 * canvases with no library: requests a second, latency (p50, p95) and
 * errors a second over the last two minutes, from the shop's own
 * GET /api/v1/stats (polled every 2 s while a secret key is typed in),
 * and the training loss and time of each stored model version, from
 * GET /api/v1/models.  Each canvas is an image with a text alternative
 * (aria-label) that says the latest figures, and data-points says how
 * many points it drew (the browser test reads both). */
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  const key = () => $("#sk").value.trim();
  const POLL_MS = 2000;

  /* Draws lines {label, color, values} over xs on a canvas; y from 0. */
  function plot(canvas, xs, lines, unit) {
    const ctx = canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 360, h = canvas.clientHeight || 140;
    if (canvas.width !== w * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const L = 44, R = 8, T = 8, B = 20;
    let max = 0;
    for (const l of lines) for (const v of l.values) if (v > max) max = v;
    max = niceMax(max);
    ctx.strokeStyle = "#ccc"; ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = T + (h - T - B) * (1 - i / 4);
      ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(w - R, y); ctx.stroke();
      ctx.fillText(fmt(max * i / 4) + unit, 2, y + 4);
    }
    const n = xs.length;
    const px = (i) => L + (w - L - R) * (n > 1 ? i / (n - 1) : 0.5);
    const py = (v) => T + (h - T - B) * (1 - (max ? v / max : 0));
    if (n) {
      ctx.fillText(String(xs[0]), L, h - 5);
      const last = String(xs[n - 1]);
      ctx.fillText(last, w - R - ctx.measureText(last).width, h - 5);
    }
    let drawn = 0;
    for (const l of lines) {
      ctx.strokeStyle = l.color; ctx.lineWidth = 2; ctx.beginPath();
      l.values.forEach((v, i) => { if (i) ctx.lineTo(px(i), py(v)); else ctx.moveTo(px(i), py(v)); });
      if (n === 1) { ctx.arc(px(0), py(l.values[0]), 3, 0, 7); }
      ctx.stroke();
      drawn += l.values.length;
    }
    canvas.dataset.points = String(drawn);
    canvas.setAttribute("aria-label", canvas.dataset.title + ": " + (n ? lines.map((l) =>
      l.label + " " + fmt(l.values[n - 1]) + unit).join(", ") : "no data yet"));
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }
  function fmt(v) {
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
    return v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(v >= 1 ? 1 : 2);
  }
  function legend(id, lines) {
    $(id).replaceChildren(...lines.map((l) => {
      const s = document.createElement("span");
      s.className = "key"; s.style.borderColor = l.color; s.textContent = l.label;
      return s;
    }));
  }

  const RQ = [{ label: "requests/s", color: "#1f5fa8" }];
  const LAT = [{ label: "p50", color: "#1f7a3a" }, { label: "p95", color: "#a8461f" }];
  const ERR = [{ label: "5xx/s", color: "#b00020" }, { label: "4xx/s", color: "#7a5c00" }];
  const MOD = [{ label: "loss", color: "#5a2ca0" }];
  const MODT = [{ label: "seconds", color: "#1f5fa8" }];

  async function live() {
    const s = await Knytt.call(key(), "GET", "/api/v1/stats");
    const secs = s.seconds || [];
    const xs = secs.map((p) => new Date(p.t * 1000).toISOString().slice(11, 19));
    const col = (f) => secs.map((p) => Number(p[f]) || 0);
    plot($("#ch-req"), xs, [{ ...RQ[0], values: col("requests") }], "");
    plot($("#ch-lat"), xs, [{ ...LAT[0], values: col("p50_ms") }, { ...LAT[1], values: col("p95_ms") }], " ms");
    plot($("#ch-err"), xs, [{ ...ERR[0], values: col("errors") }, { ...ERR[1], values: col("client_errors") }], "");
    const recent = secs.slice(-10), sum = (f) => recent.reduce((a, p) => a + (Number(p[f]) || 0), 0);
    $("#live-sum").textContent = "Last 10 s: " + (sum("requests") / 10).toFixed(1) + " requests/s, " +
      sum("errors") + " server errors, " + sum("client_errors") + " refused.";
  }

  async function models() {
    const m = await Knytt.call(key(), "GET", "/api/v1/models");
    const vs = (m.versions || []).slice().sort((a, b) => a.version - b.version);
    const xs = vs.map((v) => "v" + v.version);
    const md = (v, f) => Number((v.metadata || {})[f]) || 0;
    plot($("#ch-loss"), xs, [{ ...MOD[0], values: vs.map((v) => md(v, "loss")) }], "");
    plot($("#ch-ttime"), xs, [{ ...MODT[0], values: vs.map((v) => md(v, "train_seconds")) }], " s");
  }

  let timer = null;
  async function tick() {
    timer = null;
    if (!key()) return;
    try { await live(); } catch (e) { $("#live-sum").textContent = "Live figures: " + e.message; }
    timer = setTimeout(tick, POLL_MS);
  }
  function start() {
    if (!key()) return;
    if (!timer) tick();
    models().catch(() => {});
  }
  /* the charts' own look, kept here rather than in the shared shop.css */
  const st = document.createElement("style");
  st.textContent = ".charts{display:flex;flex-wrap:wrap;gap:1rem}" +
    ".charts figure{margin:0;flex:1 1 320px}.charts canvas{display:block;width:100%;height:140px;" +
    "border:1px solid #ddd;background:#fff}.charts .key{border-left:12px solid;padding-left:4px;" +
    "margin-left:8px;font-size:.85em}";
  document.head.appendChild(st);
  legend("#lg-req", RQ); legend("#lg-lat", LAT); legend("#lg-err", ERR);
  legend("#lg-loss", MOD); legend("#lg-ttime", MODT);
  $("#sk").addEventListener("change", start);
  /* a training run adds a version: draw the history again when it ends */
  new MutationObserver(() => { if (key()) models().catch(() => {}); })
    .observe($("#history tbody"), { childList: true });
  start();
})();
