'use strict';
// knytt.Embedder against a loopback /v1/embeddings server run by the
// test itself (node:http): rows come back in input order with the
// vectors the server computed.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('http');
const knytt = require('..');

// The server's embedding of text: [length, first code point, 1.5].
const vec = (t) => [t.length, t.length ? t.codePointAt(0) : 0, 1.5];

function serve() {
  const seen = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const j = JSON.parse(body);
      seen.push({ path: req.url, auth: req.headers.authorization, body: j });
      if (req.headers.authorization === 'Bearer wrong') {
        res.writeHead(401, { 'Content-Length': 0 });
        res.end();
        return;
      }
      const inputs = typeof j.input === 'string' ? [j.input] : j.input;
      const data = inputs.map((t, i) => ({ index: i, embedding: vec(t) })).reverse();
      const out = JSON.stringify({ data });
      res.writeHead(200, { 'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () =>
    resolve({ srv, seen, url: `http://127.0.0.1:${srv.address().port}` })));
}

test('embedder: probe, embed, dim against a loopback server', async () => {
  const { srv, seen, url } = await serve();
  try {
    const em = new knytt.Embedder(url, { model: 'm1', apiKey: 'k1', timeoutMs: 5000 });
    assert.equal(em.dim, 0);
    assert.equal(await em.probe(), 3);
    assert.equal(em.dim, 3);
    const rows = await em.embed(['shoe', 'Zebra', 'a']);
    assert.ok(rows instanceof Float32Array);
    assert.deepEqual([...rows], [...vec('shoe'), ...vec('Zebra'), ...vec('a')]);
    const last = seen[seen.length - 1];
    assert.equal(last.path, '/v1/embeddings');
    assert.equal(last.auth, 'Bearer k1');
    assert.equal(last.body.model, 'm1');
    assert.equal((await em.embed([])).length, 0);
    assert.throws(() => em.embed(['ok', 'bad\u0000']), (e) => e.code === 'KNYTT_EINVAL' &&
      e.message.includes('texts[1]'));
    em.close();
    const bad = new knytt.Embedder(url, { apiKey: 'wrong', timeoutMs: 5000 });
    await assert.rejects(bad.probe(), { code: 'KNYTT_EAUTH' });
    bad.close();
    const two = new knytt.Embedder(url, { dim: 2, timeoutMs: 5000 });
    await assert.rejects(two.embed(['x']), { code: 'KNYTT_EPROTO' });
    two.close();
    assert.throws(() => new knytt.Embedder('ftp://127.0.0.1:1'), { code: 'KNYTT_EINVAL' });
    assert.throws(() => new knytt.Embedder(url, { model: 'm\u0000' }),
      (e) => e.code === 'KNYTT_EINVAL' && e.message.includes('model'));
  } finally {
    srv.close();
  }
});
