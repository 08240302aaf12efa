'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const knytt = require('..');
const { shop, tmpdir, cliJson } = require('./helpers');

const SHOP = shop();
test.after(() => fs.rmSync(SHOP, { recursive: true, force: true }));

async function shopEngine(db, opts = {}) {
  const e = new knytt.Engine('sqlite:' + db, Object.assign({ model: 'als', dim: 16 }, opts));
  for (const kind of ['items', 'users', 'interactions']) {
    const r = await e.store.importFile(path.join(SHOP, kind + '.csv'), kind);
    assert.ok(r.accepted > 0);
    assert.deepEqual(r.rejects, []);
  }
  e.sync();
  return e;
}

test('store: items, users, interactions, favorites, keys, models', () => {
  const st = new knytt.Store();
  assert.equal(st.backend, 'sqlite');
  const id = st.itemUpsert({ id: 'sku-1', title: 'Red trail shoe', category: 'shoes/trail',
    price: 89.5, currency: 'EUR', attributes: { color: 'red' } });
  st.itemUpsert({ id: 'sku-2', title: 'Blue rain jacket', category: 'clothing', price: 120,
    inStock: false });
  const it = st.itemGet('sku-1');
  assert.equal(it.itemId, id);
  assert.deepEqual(it.attributes, { color: 'red' });
  assert.equal(st.itemGet(id).id, 'sku-1');
  assert.equal(st.itemCount(), 2);
  assert.equal(st.search('trail shoe')[0].itemId, id);
  assert.deepEqual(st.search('jacket', { inStockOnly: true }), []);
  // a validation error names its field apart from the message
  assert.throws(() => st.itemUpsert({ id: 'sku-3', title: 'Odd', price: -3 }),
    (e) => e.code === 'KNYTT_EINVAL' && e.field === 'price' && /price/.test(e.message));
  assert.throws(() => st.interactionAdd({ user: 'alice', item: 'sku-1', type: 'Bad Type' }),
    (e) => e.field === 'type');
  st.userUpsert('alice', { tier: 'gold' });
  assert.equal(st.interactionAdd({ user: 'alice', item: 'sku-1', type: 'purchase',
    eventId: 'e1' }), true);
  assert.equal(st.interactionAdd({ user: 'alice', item: 'sku-1', type: 'purchase',
    eventId: 'e1' }), false);
  st.interactionAdd({ user: 'bob', item: 'sku-2', type: 'rating', value: 4.5 });
  assert.equal(st.interactionCount(), 2);
  assert.equal(st.userRecent('bob')[0].value, 4.5);
  assert.equal(st.itemRecent('sku-1')[0].user, 'alice');
  st.favoriteSet('alice', 'sku-2');
  assert.deepEqual(st.favoriteList('alice'), [st.itemGet('sku-2').itemId]);
  st.favoriteUnset('alice', 'sku-2');
  assert.deepEqual(st.favoriteList('alice'), []);
  const log = st.searchLog('trail shoe', { user: 'alice', resultCount: 1 });
  st.searchClick(log, 'sku-1');
  const v = st.modelPut('als', Buffer.from([0, 1, 2]), { ndcg: 0.5 });
  const m = st.modelGet('als');
  assert.equal(m.version, v);
  assert.deepEqual([...m.blob], [0, 1, 2]);
  assert.deepEqual(m.metadata, { ndcg: 0.5 });
  const key = st.keyCreate('public');
  assert.deepEqual(st.keyLookup(key), { tenant: st.tenant, scope: 'public' });
  st.keyRevoke(key);
  assert.throws(() => st.keyLookup(key), { code: 'KNYTT_EAUTH' });
  assert.throws(() => st.itemUpsert({ id: 'x', currency: 'euro' }),
    (e) => e.code === 'KNYTT_EINVAL' && /currency/.test(e.message));
  assert.throws(() => st.interactionAdd({ user: 'a', item: 'nope' }), { code: 'KNYTT_ENOTFOUND' });
  assert.throws(() => st.tenantCreate('default'), { code: 'KNYTT_EEXIST' });
  st.itemDelete('sku-2');
  assert.equal(st.itemGet('sku-2').deleted, true);
  st.close();
  st.close();
  assert.throws(() => st.itemCount(), { code: 'KNYTT_ESTATE' });
});

test('store import reports rejected rows', async () => {
  const dir = tmpdir();
  const csv = path.join(dir, 'items.csv');
  fs.writeFileSync(csv, 'id,title,price\na,Shoe,10\nb,Hat,-3\nc,Bag,7\n');
  const st = new knytt.Store();
  const r = await st.importFile(csv, 'items');
  assert.equal(r.accepted, 2);
  assert.equal(r.rejects.length, 1);
  assert.equal(r.rejects[0].line, 3);
  assert.equal(r.rejects[0].field, 'price');
  await assert.rejects(st.importFile(path.join(dir, 'none.csv'), 'items'), { code: 'KNYTT_EIO' });
  await assert.rejects(st.importFile(csv, 'things'), { code: 'KNYTT_EINVAL' });
  // a failure on the pool thread keeps the field it named
  const bad = path.join(dir, 'bad.csv');
  fs.writeFileSync(bad, 'id,title,colour\na,Shoe,red\n');
  await assert.rejects(st.importFile(bad, 'items'),
    (e) => e.code === 'KNYTT_EINVAL' && e.field === 'colour' && /unknown column/.test(e.message));
  st.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('shop end to end: same answers as the knytt command', async () => {
  const dir = tmpdir();
  const db = path.join(dir, 'shop.db');
  const e = await shopEngine(db, { als: { reg: 0.1, alpha: 1, iterations: 6 } });
  const epochs = [];
  const status = await e.train({ onProgress: (p) => { epochs.push([p.epoch, p.epochs]); } });
  assert.deepEqual(epochs, [1, 2, 3, 4, 5, 6].map((i) => [i, 6]));
  assert.ok(status.modelVersion >= 1 && status.itemsIndexed > 0);
  e.close();
  const e2 = new knytt.Engine('sqlite:' + db);
  const rec = e2.recommend('u0001', { k: 8 }).map((r) => r.id);
  const sim = e2.similar('i00010', { k: 5 }).map((r) => r.id);
  const shoes = e2.recommend('u0002', { k: 5, filter: { category: 'shoes', priceMax: 150 } });
  const found = e2.search('espresso', { k: 5 });
  assert.ok(found.length > 0 && found.logId > 0);
  for (const r of shoes) {
    const it = e2.store.itemGet(r.id);
    assert.ok(it.category.startsWith('shoes') && it.price <= 150);
  }
  e2.close();
  assert.deepEqual(rec, cliJson(db, 'recommend', 'u0001', '--k', '8').results.map((r) => r.item));
  assert.deepEqual(sim, cliJson(db, 'similar', 'i00010', '--k', '5').results.map((r) => r.item));
  assert.equal(rec.length, 8);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('embedQuery: the vector behind a text search', async () => {
  const dir = tmpdir();
  const als = await shopEngine(path.join(dir, 'als.db'));
  await als.train();
  assert.equal(als.dim, 16);
  assert.equal(als.embedQuery('hiking boot'), null); // no words learned
  als.close();
  const e = await shopEngine(path.join(dir, 'tt.db'), { model: 'twotower', twotowerEpochs: 2 });
  await e.train();
  const v = e.embedQuery('hiking boot');
  assert.ok(v instanceof Float32Array && v.length === 16);
  assert.ok(Math.abs(v.reduce((s, x) => s + x * x, 0) - 1) < 1e-4);
  const hits = e.search(null, { k: 5, vector: v });
  assert.equal(hits.length, 5);
  assert.ok(hits.every((h) => h.reason === 'semantic'));
  assert.throws(() => e.embedQuery(''), (err) => err.code === 'KNYTT_EINVAL' && err.field === 'text');
  e.close();
  assert.throws(() => e.embedQuery('boot'), (err) => err.code === 'KNYTT_ESTATE');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('profile cache: a budget, evictions, the same answers', async () => {
  const dir = tmpdir();
  const db = path.join(dir, 'pc.db');
  const e = await shopEngine(db);
  await e.train();
  const users = ['u0001', 'u0002', 'u0003', 'u0004', 'u0005', 'u0006'];
  const want = users.map((u) => e.recommend(u, { k: 5 }).map((r) => r.id));
  let info = e.profileCacheInfo();
  assert.equal(info.budget, 64 * 1024 * 1024);
  assert.equal(info.evictions, 0);
  assert.ok(info.profiles >= users.length && info.bytes > 0);
  e.close();
  // one byte: every idle profile is evicted and loaded again on its next
  // request, with the same answers
  const small = new knytt.Engine('sqlite:' + db, { profileCache: 1 });
  for (let round = 0; round < 2; round++) {
    users.forEach((u, i) => assert.deepEqual(small.recommend(u, { k: 5 }).map((r) => r.id), want[i]));
  }
  info = small.profileCacheInfo();
  assert.equal(info.budget, 1);
  assert.ok(info.profiles <= 1);
  assert.ok(info.evictions >= 2 * users.length - 1, `evictions ${info.evictions}`);
  small.setProfileCache(Infinity);
  assert.equal(small.profileCacheInfo().budget, Infinity);
  small.setProfileCache(2n ** 20n);
  assert.equal(small.profileCacheInfo().budget, 1048576);
  for (const bad of [-1, 1.5, '64M', null, 2n ** 64n]) {
    assert.throws(() => small.setProfileCache(bad), (err) => err.code === 'KNYTT_EINVAL', String(bad));
  }
  small.close();
  assert.throws(() => small.profileCacheInfo(), (err) => err.code === 'KNYTT_ESTATE');
  assert.throws(() => new knytt.Engine('sqlite:' + db, { profileCache: -5 }),
    (err) => err.code === 'KNYTT_EINVAL');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('background training: trainStart, trainStatus, trainWait', async () => {
  const dir = tmpdir();
  const db = path.join(dir, 'shop.db');
  const e = await shopEngine(db, { als: { reg: 0.1, alpha: 1, iterations: 6 } });
  assert.equal(e.trainStatus().modelVersion, 0);
  e.trainStart();
  const polled = e.trainStatus();
  assert.ok(polled.epochs === 0 || polled.epochs === 6);
  // queries go on while the job runs
  assert.ok(Array.isArray(e.recommend('u0001', { k: 3 })));
  const wait = e.trainWait();
  assert.throws(() => e.close(), { code: 'KNYTT_EBUSY' }, 'trainWait pending');
  const status = await wait;
  assert.equal(status.running, false);
  assert.equal(status.lastRc, 0);
  assert.ok(status.modelVersion >= 1 && status.itemsIndexed > 0);
  const rec = e.recommend('u0001', { k: 8 }).map((r) => r.id);
  e.close();
  assert.deepEqual(rec, cliJson(db, 'recommend', 'u0001', '--k', '8').results.map((r) => r.item));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('feedback, favorites, trending, catalog changes', async () => {
  const dir = tmpdir();
  const e = await shopEngine(path.join(dir, 's.db'));
  await e.train();
  const before = e.recommend('u0003').map((r) => r.id);
  e.feedback('u0003', 'i00005', 'purchase');
  const after = e.recommend('u0003').map((r) => r.id);
  assert.ok(!after.includes('i00005'));
  assert.notDeepEqual(before, after);
  e.favorite('u0003', 'i00007');
  e.favorite('u0003', 'i00009');
  assert.deepEqual(e.favorites('u0003').sort(), ['i00007', 'i00009']);
  e.unfavorite('u0003', 'i00009');
  assert.deepEqual(e.favorites('u0003'), ['i00007']);
  const trend = e.trending({ k: 5, window: 3600 });
  assert.equal(trend[0].id, 'i00005');
  assert.equal(trend[0].reason, 'trending');
  e.itemUpsert({ id: 'new-1', title: 'Brand new thing', category: 'misc', price: 1 },
    new Float32Array(16).fill(1));
  assert.equal(e.store.itemGet('new-1').title, 'Brand new thing');
  e.itemDelete('new-1');
  assert.throws(() => e.recommend('nobody-ever'), { code: 'KNYTT_ENOTFOUND' });
  assert.throws(() => e.feedback('u0001', 'no-such-item'), { code: 'KNYTT_ENOTFOUND' });
  const st = e.store;
  e.close();
  assert.throws(() => st.itemCount(), { code: 'KNYTT_ESTATE' });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('training: cancel, a throwing callback, queries meanwhile', async () => {
  const dir = tmpdir();
  const e = await shopEngine(path.join(dir, 't.db'));
  await assert.rejects(e.train({ onProgress: (p) => p.epoch >= 2 }), { code: 'KNYTT_ECANCELED' });
  await assert.rejects(e.train({ onProgress: () => { throw new TypeError('from the callback'); } }),
    (err) => err instanceof TypeError && /from the callback/.test(err.message));
  const seen = [];
  const job = e.train({ onProgress: (p) => { seen.push(p.epoch); } });
  assert.throws(() => e.close(), { code: 'KNYTT_EBUSY' });
  assert.ok(Array.isArray(e.trending({ k: 3 })));   // the loop is free meanwhile
  await job;
  assert.equal(seen.length, 15);
  e.close();
  assert.throws(() => e.recommend('u0001'), { code: 'KNYTT_ESTATE' });
  assert.throws(() => new knytt.Engine('mysql://x'), { code: 'KNYTT_EINVAL' });
  assert.throws(() => new knytt.Engine('sqlite::memory:', { model: 'bert' }), { code: 'KNYTT_EINVAL' });
  fs.rmSync(dir, { recursive: true, force: true });
});
