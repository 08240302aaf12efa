/* analytics.js -- the back office's search analytics and A/B experiment
 * panels: the search report (GET /api/v1/analytics/searches), the
 * experiments (GET/POST /api/v1/experiments), a report per variant with
 * its intervals, lift and p-value, and stopping one.  The secret key is
 * the one typed in the page's key field (#sk), as for the other panels. */
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  const sk = () => $("#sk").value.trim();
  const say = (m) => { $("#status").textContent = m || ""; };
  const cell = (t) => { const td = document.createElement("td"); td.textContent = t == null ? "" : String(t); return td; };
  const row = (...cells) => { const tr = document.createElement("tr"); tr.append(...cells); return tr; };
  const pct = (x) => (100 * x).toFixed(1) + "%";
  function guard(fn) {
    return async (ev) => {
      if (ev) ev.preventDefault();
      say("");
      try { await fn(ev); } catch (e) { say("Error: " + e.message + (e.field ? " (field " + e.field + ")" : "")); }
    };
  }

  function queryRows(list) {
    return list.map((q) => row(cell(q.query), cell(q.searches), cell(q.zero_results),
      cell(q.mean_results.toFixed(1)), cell(pct(q.ctr)), cell(q.mrr.toFixed(3))));
  }
  $("#an-form").addEventListener("submit", guard(async () => {
    const days = Number($("#an-days").value) || 7;
    const since = Date.now() - days * 86400000;
    const r = await Knytt.call(sk(), "GET", "/api/v1/analytics/searches?top=20&since=" + Math.floor(since));
    $("#an-sum").textContent = r.searches + " searches by " + r.users + " shoppers, " + r.zero_results +
      " without a result; click-through " + pct(r.ctr) + ", MRR " + r.mrr.toFixed(3) + ".";
    $("#an-top tbody").replaceChildren(...queryRows(r.top_queries));
    $("#an-few tbody").replaceChildren(...queryRows(r.few_results));
  }));

  function rate(s, control) {
    let t = pct(s.rate) + " [" + pct(s.ci_low) + ", " + pct(s.ci_high) + "]";
    if (!control && s.p_value != null)
      t += (s.lift != null ? ", lift " + (s.lift >= 0 ? "+" : "") + pct(s.lift) : "") + ", p=" + s.p_value.toFixed(4);
    return t;
  }
  async function report(name) {
    const r = await Knytt.call(sk(), "GET", "/api/v1/experiments/" + encodeURIComponent(name));
    $("#ex-rep-h").textContent = "Report of " + r.name + " (" + r.status + ")";
    $("#ex-rep tbody").replaceChildren(...r.report.map((v, i) => row(cell(v.variant + (i === 0 ? " (control)" : "")),
      cell(v.exposures), cell(v.users), cell(rate(v.ctr, i === 0)), cell(rate(v.conversion, i === 0)))));
    $("#ex-note").textContent = r.note ? "Note: " + r.note + "." : "";
    $("#ex-report").hidden = false;
  }
  function button(text, label, fn) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", guard(fn));
    return b;
  }
  async function list() {
    const r = await Knytt.call(sk(), "GET", "/api/v1/experiments");
    $("#ex-list tbody").replaceChildren(...r.experiments.map((x) => {
      const acts = document.createElement("td");
      acts.append(button("Report", "Report of " + x.name, () => report(x.name)));
      if (x.status === "running")
        acts.append(" ", button("Stop", "Stop " + x.name, async () => {
          await Knytt.call(sk(), "POST", "/api/v1/experiments/" + encodeURIComponent(x.name) + "/stop");
          say("Stopped " + x.name + ".");
          await list();
        }));
      return row(cell(x.name), cell(x.status), cell(x.variants.map((v) => v.name + " " + v.share).join(", ")), acts);
    }));
  }
  $("#ex-refresh").addEventListener("click", guard(list));
  $("#ex-form").addEventListener("submit", guard(async () => {
    const variants = $("#ex-variants").value.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
      const [name, share] = s.split(":");
      return share ? { name, share: Number(share) } : { name };
    });
    const x = await Knytt.call(sk(), "POST", "/api/v1/experiments", { name: $("#ex-name").value.trim(), variants });
    say("Experiment " + x.name + " created.");
    await list();
  }));
  $("#sk").addEventListener("change", () => { if (sk()) list().catch(() => {}); });
  if (sk()) list().catch(() => {});
})();
