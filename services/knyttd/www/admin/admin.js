/* admin.js -- the back office: catalog upload (CSV or JSON Lines, sent
 * to POST /api/v1/items in batches, with the rejected rows reported by
 * their line in the file), catalog find and edit, model training with
 * progress and history, tenants and keys.  The keys are typed in the
 * page and kept in sessionStorage only (gone with the tab). */
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  for (const id of ["sk", "ak"]) {
    $("#" + id).value = sessionStorage.getItem("knytt." + id) || "";
    $("#" + id).addEventListener("change", (e) => sessionStorage.setItem("knytt." + id, e.target.value.trim()));
  }
  const sk = () => $("#sk").value.trim(), ak = () => $("#ak").value.trim();
  const say = (m) => { $("#status").textContent = m || ""; };
  const cell = (t) => { const td = document.createElement("td"); td.textContent = t == null ? "" : String(t); return td; };
  const row = (...cells) => { const tr = document.createElement("tr"); tr.append(...cells); return tr; };
  function guard(fn) {
    return async (ev) => {
      if (ev) ev.preventDefault();
      say("");
      try { await fn(); } catch (e) { say("Error: " + e.message + (e.field ? " (field " + e.field + ")" : "")); }
    };
  }

  /* CSV with quoted fields ("a ""b"", c"); rows as arrays of strings,
   * each with the line it started on. */
  function parseCSV(text) {
    const rows = [];
    let f = "", r = [], q = false, line = 1, start = 1;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (q) {
        if (c === '"' && text[i + 1] === '"') { f += '"'; i++; }
        else if (c === '"') q = false;
        else { if (c === "\n") line++; f += c; }
      } else if (c === '"') q = true;
      else if (c === ",") { r.push(f); f = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        r.push(f); f = "";
        if (r.length > 1 || r[0] !== "") { r.line = start; rows.push(r); }
        r = []; line++; start = line;
      } else f += c;
    }
    if (f !== "" || r.length) { r.push(f); r.line = start; rows.push(r); }
    return rows;
  }
  /* A CSV cell as JSON: numbers and booleans where the field wants them;
   * anything else is sent as it is, so the server names the bad field. */
  function typed(name, v) {
    if (name === "price" || name === "quality_score")
      return v.trim() !== "" && !isNaN(Number(v)) ? Number(v) : v;
    if (name === "in_stock") {
      const l = v.trim().toLowerCase();
      if (["true", "1", "yes"].includes(l)) return true;
      if (["false", "0", "no"].includes(l)) return false;
      return v;
    }
    if (name === "attributes") { try { return JSON.parse(v); } catch (e) { return v; } }
    return v;
  }
  function itemsOf(name, text) {
    if (/\.(jsonl|ndjson|json)$/i.test(name)) {
      const out = [];
      text.split("\n").forEach((l, i) => {
        if (!l.trim()) return;
        let o;
        try { o = JSON.parse(l); } catch (e) { o = { __bad: "line is not JSON: " + e.message }; }
        out.push({ line: i + 1, item: o });
      });
      return out;
    }
    const rows = parseCSV(text);
    const head = (rows.shift() || []).map((h) => h.trim());
    if (!head.includes("item_id")) throw new Error("the CSV header has no item_id column");
    return rows.map((r) => {
      const o = {};
      head.forEach((h, j) => { if (r[j] !== undefined && r[j] !== "") o[h] = typed(h, r[j]); });
      return { line: r.line, item: o };
    });
  }

  $("#upload").addEventListener("submit", guard(async () => {
    const file = $("#file").files[0];
    if (!file) throw new Error("choose a file first");
    const rows = itemsOf(file.name, await file.text());
    const body = $("#report tbody");
    body.replaceChildren();
    let ok = 0, bad = 0;
    for (const r of rows.filter((x) => x.item.__bad)) {
      bad++; body.append(row(cell(r.line), cell(""), cell(""), cell(r.item.__bad)));
    }
    const good = rows.filter((x) => !x.item.__bad);
    for (let i = 0; i < good.length; i += 1000) {
      const part = good.slice(i, i + 1000);
      say("Uploading rows " + (i + 1) + "-" + (i + part.length) + " of " + good.length + "...");
      const res = await Knytt.call(sk(), "POST", "/api/v1/items", { items: part.map((x) => x.item) });
      ok += res.accepted_count;
      for (const rj of res.rejected) {
        bad++;
        const tr = row(cell(part[rj.index].line), cell(rj.item_id), cell(rj.field), cell(rj.reason));
        tr.className = "err";
        body.append(tr);
      }
    }
    $("#report").hidden = bad === 0;
    $("#up-sum").textContent = ok + " rows accepted, " + bad + " rejected.";
    say("Upload finished.");
  }));

  let editing = null;
  function showItems(list) {
    const body = $("#items tbody");
    body.replaceChildren(...list.map((it) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = "Edit";
      b.setAttribute("aria-label", "Edit " + it.item_id);
      b.addEventListener("click", () => {
        editing = it.item_id;
        $("#edit-h").textContent = "Edit item " + it.item_id;
        $("#e-title").value = it.title || "";
        $("#e-cat").value = it.category || "";
        $("#e-price").value = it.price != null ? it.price : "";
        $("#e-stock").checked = it.in_stock !== false;
        $("#edit").hidden = false;
        $("#e-title").focus();
      });
      return row(cell(it.item_id), cell(it.title), cell(it.category), cell(it.price), cell(it.in_stock ? "yes" : "no"), b);
    }));
  }
  $("#browse").addEventListener("submit", guard(async () => {
    const q = $("#bq").value.trim();
    let list = [];
    try { list = [await Knytt.call(sk(), "GET", "/api/v1/items/" + encodeURIComponent(q))]; }
    catch (e) { if (e.status !== 404) throw e; }
    const r = await Knytt.call(sk(), "POST", "/api/v1/search", { query: q || "a", count: 50 });
    showItems(list.concat(r.results.filter((x) => !list.some((y) => y.item_id === x.item_id))));
  }));
  $("#edit").addEventListener("submit", guard(async () => {
    const patch = { title: $("#e-title").value, category: $("#e-cat").value, in_stock: $("#e-stock").checked };
    if ($("#e-price").value !== "") patch.price = Number($("#e-price").value);
    const it = await Knytt.call(sk(), "PATCH", "/api/v1/items/" + encodeURIComponent(editing), patch);
    showItems([it]);
    $("#edit").hidden = true;
    say("Saved " + it.item_id + ".");
  }));

  async function history() {
    const m = await Knytt.call(sk(), "GET", "/api/v1/models");
    $("#history tbody").replaceChildren(...(m.versions || []).map((v) => row(
      cell(v.version + (v.version === m.serving_version ? " (serving)" : "")),
      cell(new Date(v.created_at_ms).toISOString().replace("T", " ").slice(0, 19)),
      cell(v.size_bytes), cell(JSON.stringify(v.metadata || {})))));
  }
  $("#train").addEventListener("click", guard(async () => {
    const j = await Knytt.call(sk(), "POST", "/api/v1/models/train");
    $("#job-state").textContent = j.state;
    for (;;) {
      await new Promise((r) => setTimeout(r, 400));
      const s = await Knytt.call(sk(), "GET", "/api/v1/models/jobs/" + encodeURIComponent(j.job_id));
      const p = s.progress || {};
      if (p.epochs) $("#job-progress").value = p.epoch / p.epochs;
      $("#job-detail").textContent = (p.epochs ? "epoch " + p.epoch + " of " + p.epochs : "") +
        (s.metrics && s.metrics.loss != null ? ", loss " + Number(s.metrics.loss).toFixed(4) : "");
      if (s.state === "done" || s.state === "failed") {
        if (s.state === "done") $("#job-progress").value = 1;
        $("#job-state").textContent = s.state + (s.error ? ": " + (s.error.message || s.error) : "");
        break;
      }
      $("#job-state").textContent = s.state;
    }
    await history();
  }));

  $("#tenant").addEventListener("submit", guard(async () => {
    const t = await Knytt.call(ak(), "POST", "/api/v1/admin/tenants", { name: $("#t-name").value.trim() });
    $("#key-out").textContent = "Tenant " + t.name + " created (id " + t.id + ").";
    $("#k-tenant").value = t.name;
  }));
  $("#key").addEventListener("submit", guard(async () => {
    const k = await Knytt.call(ak(), "POST", "/api/v1/admin/tenants/" +
      encodeURIComponent($("#k-tenant").value.trim()) + "/keys", { kind: $("#k-kind").value });
    $("#key-out").textContent = "New " + k.kind + " key of " + k.tenant + " (shown once): " + k.key;
  }));
  $("#revoke").addEventListener("submit", guard(async () => {
    await Knytt.call(ak(), "DELETE", "/api/v1/admin/tenants/" + encodeURIComponent($("#r-tenant").value.trim()) +
      "/keys/" + encodeURIComponent($("#r-key").value.trim()));
    $("#key-out").textContent = "Key revoked.";
  }));
  $("#sk").addEventListener("change", () => { if (sk()) history().catch((e) => say("Error: " + e.message)); });
  if (sk()) history().catch(() => {});
  document.body.dataset.ready = "admin";
})();
