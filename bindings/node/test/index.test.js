'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const knytt = require('..');
const { gaussian, cAnswers, tmpdir } = require('./helpers');

const DIM = 16;

for (const [metric, quant] of [['l2', 'none'], ['ip', 'none'], ['cosine', 'none'],
  ['l2', 'int8'], ['cosine', 'int8_only'], ['ip', 'f16']]) {
  test(`same answers as the C API (${metric}, ${quant})`, () => {
    const base = gaussian(600, DIM, 1);
    const queries = gaussian(25, DIM, 2);
    const want = cAnswers(metric, quant, DIM, base, queries, 10, 40);
    const ix = new knytt.Index(DIM, { metric, quant });
    if (quant !== 'none' && quant !== 'f16') ix.trainQuant(base);
    for (let i = 0; i < 600; i++) ix.add(i, base.subarray(i * DIM, (i + 1) * DIM));
    for (let q = 0; q < 25; q++) {
      const r = ix.search(queries.subarray(q * DIM, (q + 1) * DIM), 10, { ef: 40 });
      assert.deepEqual([...r.labels], want.labels[q]);
      assert.deepEqual([...r.distances], want.distances[q]);
    }
    ix.close();
  });
}

test('loads an index written by C; batch search on a pool thread', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'c.idx');
  const base = gaussian(400, DIM, 3);
  const queries = gaussian(10, DIM, 4);
  const want = cAnswers('l2', 'none', DIM, base, queries, 5, 30, file);
  const ix = knytt.Index.load(file);
  assert.equal(ix.dim, DIM);
  assert.equal(ix.size, 400);
  const r = await ix.searchBatch(queries, 5, { ef: 30 });
  assert.deepEqual([...r.labels], want.labels.flat());
  assert.deepEqual([...r.distances], want.distances.flat());
  ix.save(path.join(dir, 'js.idx'));
  ix.close();
  const again = knytt.Index.load(path.join(dir, 'js.idx'));
  assert.deepEqual([...(await again.searchBatch(queries, 5, { ef: 30 })).labels],
    want.labels.flat());
  again.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('addBatch and searchBatch agree with single calls', async () => {
  const base = gaussian(800, DIM, 5);
  const queries = gaussian(30, DIM, 6);
  const ix = new knytt.Index(DIM, { m: 12, efConstruction: 100, seed: 9 });
  await ix.addBatch(BigUint64Array.from({ length: 800 }, (_, i) => BigInt(i)), base,
    { threads: 2 });
  const b = await ix.searchBatch(queries, 7, { ef: 50, threads: 2 });
  assert.equal(b.labels.length, 30 * 7);
  for (let q = 0; q < 30; q++) {
    const s = ix.search(queries.subarray(q * DIM, (q + 1) * DIM), 7, { ef: 50 });
    assert.deepEqual([...s.labels], [...b.labels.subarray(q * 7, q * 7 + 7)]);
    assert.deepEqual([...s.distances], [...b.distances.subarray(q * 7, q * 7 + 7)]);
  }
  ix.close();
});

test('flat index = exactKnn = brute force; distance', () => {
  const base = gaussian(500, DIM, 7);
  const queries = gaussian(12, DIM, 8);
  const ex = knytt.exactKnn(base, queries, 5, { dim: DIM });
  for (let q = 0; q < 12; q++) {
    const d = [];
    for (let i = 0; i < 500; i++) {
      let s = 0;
      for (let j = 0; j < DIM; j++) {
        const t = queries[q * DIM + j] - base[i * DIM + j];
        s += t * t;
      }
      d.push([s, i]);
    }
    d.sort((x, y) => x[0] - y[0]);
    assert.deepEqual([...ex.ids.subarray(q * 5, q * 5 + 5)].map(Number),
      d.slice(0, 5).map((x) => x[1]));
  }
  const ix = new knytt.Index(DIM, { kind: 'flat' });
  for (let i = 0; i < 500; i++) ix.add(i, base.subarray(i * DIM, (i + 1) * DIM));
  for (let q = 0; q < 12; q++) {
    assert.deepEqual([...ix.search(queries.subarray(q * DIM, (q + 1) * DIM), 5).labels],
      [...ex.ids.subarray(q * 5, q * 5 + 5)]);
  }
  ix.close();
  assert.ok(Math.abs(knytt.distance([1, 0], [0, 1], 'cosine') - 1) < 1e-6);
  assert.equal(knytt.distance([1, 2], [1, 4]), 4);
});

test('filters: function, Set and IdSet', () => {
  const base = gaussian(1000, DIM, 9);
  const q = gaussian(1, DIM, 10);
  const ix = new knytt.Index(DIM, { kind: 'flat' });
  for (let i = 0; i < 1000; i++) ix.add(i, base.subarray(i * DIM, (i + 1) * DIM));
  const allowed = new Set();
  for (let i = 0; i < 1000; i += 7) allowed.add(i);
  const all = ix.search(q, 1000);
  const best = [...all.labels].filter((l) => allowed.has(Number(l))).slice(0, 5);
  const seen = [];
  const f = ix.search(q, 5, { filter: (l) => { seen.push(l); return allowed.has(l); } });
  assert.deepEqual([...f.labels], best);
  assert.ok(seen.length > 0 && typeof seen[0] === 'number');
  assert.deepEqual([...ix.search(q, 5, { filter: allowed }).labels], best);
  const ids = new knytt.IdSet(allowed);
  assert.ok(ids.has(14) && !ids.has(15) && ids.size === allowed.size);
  assert.deepEqual([...ix.search(q, 5, { filter: ids }).labels], best);
  assert.equal(ix.search(q, 5, { filter: [] }).labels.length, 0);
  assert.throws(() => ix.search(q, 5, { filter: () => { throw new Error('boom'); } }),
    /boom/);
  ix.close();
});

test('int8 settings and single-vector operations', () => {
  const base = gaussian(300, DIM, 13);
  const mem = {};
  for (const quant of ['none', 'int8', 'int8_only', 'f16']) {
    const ix = new knytt.Index(DIM, { quant });
    for (let i = 0; i < 300; i++) ix.add(i, base.subarray(i * DIM, (i + 1) * DIM));
    mem[quant] = ix.vectorMemory();
    assert.equal(ix.search(base.subarray(5 * DIM, 6 * DIM), 1).labels[0], 5n);
    ix.close();
  }
  assert.ok(mem.int8_only * 3 < mem.none && mem.none < mem.int8);
  assert.equal(mem.f16 * 2, mem.none);
  const ix = new knytt.Index(DIM);
  ix.add(7, base.subarray(0, DIM));
  assert.ok(ix.has(7) && !ix.has(8n));
  assert.deepEqual(ix.get(7), base.slice(0, DIM));
  ix.upsert(7, base.subarray(DIM, 2 * DIM));
  assert.deepEqual(ix.get(7), base.slice(DIM, 2 * DIM));
  ix.remove(7);
  assert.equal(ix.size, 0);
  ix.close();
});

test('errors carry the code name', async () => {
  const ix = new knytt.Index(4);
  ix.add(1, [1, 2, 3, 4]);
  assert.throws(() => ix.search([1, 2, 3], 1),
    (e) => e.code === 'KNYTT_EINVAL' && e.status === -1 && e instanceof RangeError &&
      /3 dimensions, index has 4/.test(e.message));
  assert.throws(() => ix.add(1, [1, 2, 3, 4]), { code: 'KNYTT_EEXIST' });
  assert.throws(() => ix.remove(99), { code: 'KNYTT_ENOTFOUND' });
  assert.throws(() => ix.add(2, [1, NaN, 3, 4]), { code: 'KNYTT_EINVAL' });
  assert.throws(() => ix.add(-1, [1, 2, 3, 4]), { code: 'KNYTT_EINVAL' });
  assert.throws(() => ix.search(new Float64Array(4), 1), { code: 'KNYTT_EINVAL' });
  assert.throws(() => new knytt.Index(4, { metric: 'hamming' }), { code: 'KNYTT_EINVAL' });
  assert.throws(() => new knytt.Index(0), { code: 'KNYTT_EINVAL' });
  await assert.rejects(ix.addBatch([1, 5], [0, 0, 0, 1, 0, 0, 1, 0]),
    { code: 'KNYTT_EEXIST' });
  assert.equal(ix.size, 1);
  await assert.rejects(ix.searchBatch([1, 2, 3], 1), { code: 'KNYTT_EINVAL' });
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'bad.idx'), 'not an index at all'.repeat(10));
  assert.throws(() => knytt.Index.load(path.join(dir, 'bad.idx')), { code: 'KNYTT_ECORRUPT' });
  assert.throws(() => knytt.Index.load(path.join(dir, 'none.idx')), { code: 'KNYTT_EIO' });
  fs.rmSync(dir, { recursive: true, force: true });
  // an index in use by an async call cannot be closed under it
  const p = ix.searchBatch(new Float32Array(4 * 100), 1);
  assert.throws(() => ix.close(), { code: 'KNYTT_EBUSY' });
  await p;
  ix.close();
  ix.close();
  assert.throws(() => ix.size, { code: 'KNYTT_ESTATE' });
});

test('batch search runs off the event loop', async () => {
  const base = gaussian(20000, 32, 15);
  const queries = gaussian(2000, 32, 16);
  const ix = new knytt.Index(32, { kind: 'flat' });
  await ix.addBatch(BigUint64Array.from({ length: 20000 }, (_, i) => BigInt(i)), base);
  let ticks = 0;
  let done = false;
  const timer = setInterval(() => { ticks++; }, 1);
  const started = Date.now();
  const r = await ix.searchBatch(queries, 10, { threads: 1 }).then((x) => {
    done = true;
    return x;
  });
  const took = Date.now() - started;
  clearInterval(timer);
  assert.ok(done && r.labels.length === 20000);
  // a blocked loop would run no timer until the search returned
  assert.ok(took < 20 || ticks >= 3, `ticks ${ticks} in ${took} ms`);
  ix.close();
});
