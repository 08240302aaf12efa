/* shop.js -- the demo storefront: routes (#/, #/search, #/item/ID,
 * #/favorites, #/login), product cards with drawn placeholder images,
 * and feedback for every view, click, add-to-cart and purchase so the
 * shopper's recommendations follow what they do.
 *
 * The public key comes from ?key=... (make run prints that URL) and is
 * kept in localStorage; the shopper's token too, after login. */
"use strict";
(function () {
  const $ = (s) => document.querySelector(s);
  const params = new URLSearchParams(location.search);
  if (params.get("key")) localStorage.setItem("knytt.pk", params.get("key"));
  const PK = localStorage.getItem("knytt.pk") || "";
  let me = JSON.parse(localStorage.getItem("knytt.me") || "null");
  const favs = new Set();
  const cats = new Set();

  function api(method, path, body) {
    return Knytt.call(PK, method, path, body, me && me.token);
  }
  function say(msg) { $("#status").textContent = msg || ""; }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of kids) if (c) e.append(c);
    return e;
  }
  function money(it) {
    return typeof it.price === "number"
      ? it.price.toFixed(2) + " " + (it.currency || "") : "";
  }

  /* A placeholder drawn from the item: a colour per category, the
   * initials of the title, so a shop without images still shows cards. */
  function placeholder(it) {
    const ns = "http://www.w3.org/2000/svg";
    let h = 0;
    for (const c of it.category || it.item_id) h = (h * 31 + c.charCodeAt(0)) % 360;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 160 120");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", it.title || it.item_id);
    svg.classList.add("pic");
    const bg = document.createElementNS(ns, "rect");
    bg.setAttribute("width", "160"); bg.setAttribute("height", "120");
    bg.setAttribute("fill", "hsl(" + h + ",45%,38%)");
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", "80"); t.setAttribute("y", "72");
    t.setAttribute("text-anchor", "middle"); t.setAttribute("font-size", "34");
    t.setAttribute("fill", "#fff");
    t.textContent = (it.title || it.item_id).split(/\s+/).slice(0, 2)
      .map((w) => w[0] || "").join("").toUpperCase();
    svg.append(bg, t);
    return svg;
  }
  function picture(it) {
    if (!it.image_url) return placeholder(it);
    const img = el("img", { src: it.image_url, alt: it.title || it.item_id, class: "pic" });
    img.addEventListener("error", () => img.replaceWith(placeholder(it)));
    return img;
  }

  function feedback(type, id) {
    if (!me) return Promise.resolve();
    return api("POST", "/api/v1/feedback", { item_id: id, interaction_type: type })
      .catch((e) => say("feedback not sent: " + e.message));
  }

  function heart(it) {
    const on = favs.has(it.item_id);
    const b = el("button", {
      type: "button", class: "heart" + (on ? " on" : ""),
      "aria-pressed": on ? "true" : "false",
      "aria-label": (on ? "Remove from favorites: " : "Add to favorites: ") + (it.title || it.item_id),
      text: on ? "\u2665" : "\u2661"
    });
    b.addEventListener("click", async (ev) => {
      ev.stopPropagation();
      if (!me) { location.hash = "#/login"; return; }
      const path = "/api/v1/users/" + encodeURIComponent(me.user_id) +
        "/favorites/" + encodeURIComponent(it.item_id);
      try {
        if (favs.has(it.item_id)) { await api("DELETE", path); favs.delete(it.item_id); }
        else { await api("PUT", path, {}); favs.add(it.item_id); }
        b.replaceWith(heart(it));
      } catch (e) { say(e.message); }
    });
    return b;
  }

  function card(it) {
    if (it.category) cats.add(it.category.split("/")[0]);
    const link = el("a", { href: "#/item/" + encodeURIComponent(it.item_id), class: "title",
      text: it.title || it.item_id });
    link.addEventListener("click", () => { feedback("click", it.item_id); });
    return el("li", { class: "card", "data-id": it.item_id, "data-category": it.category || "" },
      picture(it), link,
      el("span", { class: "meta", text: (it.category || "") + " \u00b7 " + money(it) +
        (it.in_stock === false ? " \u00b7 out of stock" : "") }),
      heart(it));
  }
  function grid(title, items, id) {
    const sec = el("section", { id, "aria-labelledby": id + "-h" },
      el("h2", { id: id + "-h", text: title }));
    sec.append(items.length ? el("ul", { class: "grid" }, ...items.map(card))
      : el("p", { text: "Nothing here yet." }));
    return sec;
  }
  function fillCats() {
    const s = $("#f-cat"), have = new Set([...s.options].map((o) => o.value));
    for (const c of [...cats].sort()) if (!have.has(c)) s.append(el("option", { value: c, text: c }));
  }

  async function home() {
    const [rec, trend] = await Promise.all([
      api("POST", "/api/v1/recommendations", me ? { user_id: me.user_id, count: 12 } : { count: 12 }),
      api("GET", "/api/v1/trending?window=7d&count=8")
    ]);
    const m = $("#main");
    m.replaceChildren(
      grid(me ? "Recommended for you" : "Popular now (log in for recommendations)", rec.results, "recommended"),
      grid("Trending this week", trend.results, "trending"));
  }

  async function search(q) {
    $("#q").value = q;
    const f = {};
    if ($("#f-cat").value) f.category = $("#f-cat").value;
    if ($("#f-min").value !== "") f.price_min = Number($("#f-min").value);
    if ($("#f-max").value !== "") f.price_max = Number($("#f-max").value);
    if ($("#f-stock").checked) f.in_stock = true;
    const body = { query: q, count: 24, filters: f };
    if (me) body.user_id = me.user_id;
    const r = await api("POST", "/api/v1/search", body);
    $("#main").replaceChildren(grid("Results for \u201c" + q + "\u201d", r.results, "results"));
  }

  async function item(id) {
    const it = await api("GET", "/api/v1/items/" + encodeURIComponent(id));
    feedback("view", id);
    const sim = await api("GET", "/api/v1/similar/" + encodeURIComponent(id) + "?count=8");
    const cart = el("button", { type: "button", id: "add-to-cart", text: "Add to cart" });
    cart.addEventListener("click", () => feedback("add_to_cart", id).then(() => say("Added to cart.")));
    const buy = el("button", { type: "button", id: "buy", text: "Buy now" });
    buy.addEventListener("click", () => feedback("purchase", id).then(() => say("Thank you for your purchase.")));
    $("#main").replaceChildren(
      el("article", { class: "product", "data-id": it.item_id },
        picture(it),
        el("div", {},
          el("h1", { text: it.title || it.item_id }),
          el("p", { class: "meta", text: (it.category || "") + " \u00b7 " + money(it) +
            (it.in_stock === false ? " \u00b7 out of stock" : " \u00b7 in stock") }),
          el("p", { text: it.description || "" }),
          cart, buy, heart(it))),
      grid("Similar items", sim.results, "similar"));
  }

  async function favorites() {
    if (!me) { location.hash = "#/login"; return; }
    const r = await api("GET", "/api/v1/users/" + encodeURIComponent(me.user_id) + "/favorites");
    const list = r.results || r.items || r.favorites || [];
    $("#main").replaceChildren(grid("Your favorites", list, "favorites"));
  }

  function login() {
    const form = el("form", { id: "login", class: "login" },
      el("h1", { text: "Log in or register" }),
      el("label", { for: "user", text: "Shopper name" }),
      el("input", { id: "user", name: "user", required: "", autocomplete: "username" }),
      el("label", { for: "password", text: "Password (8 characters or more)" }),
      el("input", { id: "password", name: "password", type: "password", required: "",
        minlength: "8", autocomplete: "current-password" }),
      el("div", {},
        el("button", { type: "submit", value: "login", text: "Log in" }),
        el("button", { type: "submit", value: "register", id: "register", text: "Register" })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const how = ev.submitter && ev.submitter.value === "register" ? "register" : "login";
      try {
        const r = await api("POST", "/api/v1/auth/" + how,
          { user_id: $("#user").value, password: $("#password").value });
        me = { user_id: r.user_id, token: r.token };
        localStorage.setItem("knytt.me", JSON.stringify(me));
        await loadFavs();
        showWho();
        location.hash = "#/";
      } catch (e) { say(e.message); }
    });
    $("#main").replaceChildren(form);
    $("#user").focus();
  }

  async function loadFavs() {
    favs.clear();
    if (!me) return;
    try {
      const r = await api("GET", "/api/v1/users/" + encodeURIComponent(me.user_id) + "/favorites");
      for (const it of r.results || r.items || r.favorites || []) favs.add(it.item_id);
    } catch (e) {
      if (e.status === 401) { me = null; localStorage.removeItem("knytt.me"); }
    }
  }
  function showWho() {
    $("#who").textContent = me ? "Hello, " + me.user_id : "";
    $("#login-link").hidden = !!me;
    $("#logout").hidden = !me;
  }

  let seq = 0;
  async function route() {
    const mine = ++seq;
    say("");
    if (!PK) {
      $("#main").replaceChildren(el("p", { text:
        "No public key: open this page with ?key=PUBLIC_KEY (make run prints the URL)." }));
      return;
    }
    const h = location.hash.slice(1) || "/";
    try {
      if (h.startsWith("/item/")) await item(decodeURIComponent(h.slice(6)));
      else if (h.startsWith("/search/")) await search(decodeURIComponent(h.slice(8)));
      else if (h === "/favorites") await favorites();
      else if (h === "/login") login();
      else await home();
    } catch (e) { say("Error: " + e.message); }
    fillCats();
    /* for tests and assistive tools: the page shown is complete (a
     * route overtaken by a newer one does not claim it) */
    if (mine === seq) document.body.dataset.ready = h;
  }

  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const want = "#/search/" + encodeURIComponent($("#q").value.trim());
    if (location.hash === want) route(); else location.hash = want;
  });
  $("#logout").addEventListener("click", () => {
    me = null; favs.clear(); localStorage.removeItem("knytt.me"); showWho(); route();
  });
  window.addEventListener("hashchange", () => { delete document.body.dataset.ready; route(); });
  showWho();
  loadFavs().then(route);
})();
