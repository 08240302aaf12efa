'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const knytt = require('..');
const { tmpdir } = require('./helpers');

function interactions(users, items, n, seed) {
  let s = seed;
  const rnd = (m) => { s = (s * 1103515245 + 12345) % 2147483648; return s % m; };
  const u = new Uint32Array(n);
  const it = new Uint32Array(n);
  for (let j = 0; j < n; j++) {
    u[j] = rnd(users);
    it[j] = (rnd(Math.floor(items / 3)) * 3 + (u[j] % 3)) % items;
  }
  return { users: u, items: it };
}

test('ALS: fit, factors, score, save/load', async () => {
  const { users, items } = interactions(40, 30, 600, 3);
  const seen = [];
  const als = new knytt.ALS({ factors: 8, iterations: 5, threads: 1, reg: 0.05 });
  await als.fit({ users, items, nusers: 40, nitems: 30, onProgress: (p) => { seen.push(p.epoch); } });
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  assert.equal(als.factors, 8);
  assert.equal(als.users, 40);
  const uf = als.userFactors();
  const itf = als.itemFactors();
  assert.equal(uf.length, 40 * 8);
  const s = als.score(4);
  for (let i = 0; i < 30; i++) {
    let dot = 0;
    for (let f = 0; f < 8; f++) dot += uf[4 * 8 + f] * itf[i * 8 + f];
    assert.ok(Math.abs(dot - s[i]) < 1e-4);
  }
  assert.deepEqual([...als.score(4, [2, 7])], [s[2], s[7]]);
  const dir = tmpdir();
  als.save(path.join(dir, 'm.als'));
  assert.deepEqual(knytt.ALS.load(path.join(dir, 'm.als')).itemFactors(), itf);
  assert.deepEqual(knytt.ALS.load(als.toBuffer()).userFactors(), uf);
  const twin = new knytt.ALS({ factors: 8, iterations: 5, threads: 1, reg: 0.05 });
  await twin.fit({ users: [...users], items: [...items], nusers: 40, nitems: 30, types: Array(600).fill('view') });
  assert.deepEqual(twin.userFactors(), uf);
  await assert.rejects(new knytt.ALS({ factors: 4 }).fit({ users, items,
    onProgress: () => true }), { code: 'KNYTT_ECANCELED' });
  assert.throws(() => new knytt.ALS({ factors: 0 }), { code: 'KNYTT_EINVAL' });
  assert.throws(() => new knytt.ALS({ factors: 4 }).userFactors(), { code: 'KNYTT_ESTATE' });
  fs.writeFileSync(path.join(dir, 'bad.als'), Buffer.alloc(64));
  assert.throws(() => knytt.ALS.load(path.join(dir, 'bad.als')),
    (e) => e.code === 'KNYTT_ECORRUPT' || e.code === 'KNYTT_EVERSION');
  als.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('TwoTower: fit, embeddings, cold start, save/load', async () => {
  const { users, items } = interactions(30, 24, 500, 5);
  const cats = ['shoes', 'books', 'kitchen'];
  const features = Array.from({ length: 24 }, (_, i) => ({
    title: `${cats[i % 3]} item ${i}`, category: cats[i % 3], price: 10 + i }));
  const seen = [];
  const tt = new knytt.TwoTower({ dim: 8, epochs: 3, batch: 32, threads: 1, buckets: 1024 });
  await tt.fit({ users, items, nusers: 30, nitems: 24, features, onProgress: (p) => { seen.push(p); } });
  assert.deepEqual(seen.map((p) => p.epoch), [1, 2, 3]);
  assert.ok(seen[0].loss > 0);
  assert.equal(tt.dim, 8);
  const ie = tt.itemEmbeddings();
  assert.equal(ie.length, 24 * 8);
  const cold = tt.embedItem({ title: 'shoes item new', category: 'shoes' });
  assert.ok(Math.abs(Math.hypot(...cold) - 1) < 1e-4);
  assert.equal(tt.embedQuery('shoes').length, 8);
  assert.equal(tt.embedUser(3, [1, 2]).length, 8);
  assert.equal(tt.embedUser(null, []).length, 8);
  const dir = tmpdir();
  tt.save(path.join(dir, 'm.tt'));
  assert.deepEqual(knytt.TwoTower.load(path.join(dir, 'm.tt')).itemEmbeddings(), ie);
  assert.deepEqual(knytt.TwoTower.load(tt.toBuffer()).userEmbeddings(), tt.userEmbeddings());
  await assert.rejects(tt.fit({ users, items, nitems: 24, features: features.slice(0, 3) }),
    { code: 'KNYTT_EINVAL' });
  tt.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('exiting from a progress callback does not hang the process', () => {
  // The training thread waits for each callback; without the exit flag
  // Node's exit, which joins the thread pool, waited for it forever.
  const { spawnSync } = require('child_process');
  const script = `
    const knytt = require(${JSON.stringify(path.join(__dirname, '..'))});
    const users = Uint32Array.from({ length: 400 }, (_, i) => i % 40);
    const items = Uint32Array.from({ length: 400 }, (_, i) => (i * 7) % 30);
    new knytt.ALS({ factors: 4, iterations: 50 }).fit({ users, items,
      onProgress: (p) => { if (p.epoch === 2) process.exit(3); } });`;
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 30000 });
  assert.equal(r.status, 3, `signal ${r.signal}, stderr ${r.stderr}`);
});
