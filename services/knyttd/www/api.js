/* api.js -- the calls of knyttd's JSON API used by the pages, with the
 * key and the shopper's token.  Shared by the storefront and the back
 * office; errors come back as Error objects with .status, .code, .field. */
"use strict";
window.Knytt = (function () {
  async function call(key, method, path, body, token) {
    const h = { Authorization: "Bearer " + key };
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (token) h["X-User-Token"] = token;
    const res = await fetch(path, {
      method, headers: h,
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const er = (data && data.error) || {};
      const err = new Error(er.message || ("HTTP " + res.status));
      err.status = res.status; err.code = er.code; err.field = er.field;
      throw err;
    }
    return data;
  }
  return { call };
})();
