'use strict';
// Store reads added for parity with the Python binding: userGet,
// itemsChanged, searchLogGet, setBatchSize.  The answers are compared
// with the Python binding's on the same database file.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const knytt = require('..');
const { tmpdir } = require('./helpers');

const ROOT = path.resolve(__dirname, '..', '..', '..');

// Runs src with the Python binding; its stdout parsed as JSON.
function python(src, ...args) {
  const env = Object.assign({}, process.env, {
    PYTHONPATH: path.join(ROOT, 'bindings', 'python'),
    KNYTT_LIBRARY: process.env.KNYTT_LIBRARY || path.join(ROOT, 'build', 'libknytt.so'),
  });
  return JSON.parse(execFileSync(process.env.PYTHON || 'python3', ['-c', src, ...args.map(String)],
    { env, encoding: 'utf8' }));
}

// The Python binding's view of db (json, snake_case keys).
function pythonView(db, logId) {
  return python(`
import json, sys, knytt
with knytt.Store("sqlite:" + sys.argv[1]) as st:
    print(json.dumps({"alice": st.user_get("alice"),
        "changed": st.items_changed(0),
        "log": st.search_log_get(int(sys.argv[2])),
        "since": st.interactions_since(1500),
        "counts": st.item_counts(0, 10000, "view", 2),
        "all_counts": st.item_counts(0, 10000)}))
`, db, logId);
}

test('store reads: userGet, itemsChanged, searchLogGet match Python', () => {
  const dir = tmpdir();
  const db = path.join(dir, 's.db');
  const st = new knytt.Store('sqlite:' + db);
  let logId;
  try {
    st.setBatchSize(2);
    assert.throws(() => st.setBatchSize(10000001), { code: 'KNYTT_EINVAL' });
    st.setBatchSize(0); // the default again
    st.itemUpsert({ id: 'sku-1', title: 'Red trail shoe', category: 'shoes', price: 10 });
    st.itemUpsert({ id: 'sku-2', title: 'Blue jacket', category: 'clothing', price: 20 });
    st.itemUpsert({ id: 'sku-3', title: 'Green hat', category: 'hats', price: 5 });
    st.itemDelete('sku-3');
    const uid = st.userUpsert('alice', { tier: 'gold' });
    const u = st.userGet('alice');
    assert.equal(u.userId, uid);
    assert.deepEqual(u.attributes, { tier: 'gold' });
    assert.throws(() => st.userGet('nobody'), { code: 'KNYTT_ENOTFOUND' });
    const changed = st.itemsChanged(0);
    assert.deepEqual(changed.map((i) => i.id), ['sku-1', 'sku-2', 'sku-3']);
    assert.deepEqual(changed.map((i) => i.deleted ? 1 : 0), [0, 0, 1]);
    const later = Math.max(...changed.map((i) => i.updatedMs)) + 1;
    assert.deepEqual(st.itemsChanged(later), []);
    logId = st.searchLog('trail shoe', { user: 'alice', resultCount: 1 });
    st.searchClick(logId, 'sku-1');
    const log = st.searchLogGet(logId);
    assert.deepEqual(log, { query: 'trail shoe', resultCount: 1,
      clickedItem: st.itemGet('sku-1').itemId });
    assert.throws(() => st.searchLogGet(logId + 1000), { code: 'KNYTT_ENOTFOUND' });
    for (const [item, type, ts] of [['sku-1', 'view', 1000], ['sku-2', 'view', 2000],
      ['sku-2', 'view', 3000], ['sku-1', 'purchase', 4000], ['sku-2', 'purchase', 20000]]) {
      st.interactionAdd({ user: 'alice', item, type, tsMs: ts });
    }
  } finally {
    st.close();
  }
  const py = pythonView(db, logId);
  const st2 = new knytt.Store('sqlite:' + db);
  try {
    const u = st2.userGet('alice');
    assert.deepEqual([u.id, u.userId, u.attributes, u.createdMs],
      [py.alice.id, py.alice.user_id, py.alice.attributes, py.alice.created_ms]);
    assert.deepEqual(st2.itemsChanged(0).map((i) => [i.id, i.itemId, i.updatedMs]),
      py.changed.map((i) => [i.id, i.item_id, i.updated_ms]));
    const log = st2.searchLogGet(logId);
    assert.deepEqual([log.query, log.resultCount, log.clickedItem],
      [py.log.query, py.log.result_count, py.log.clicked_item]);
    const since = st2.interactionsSince(1500);
    assert.deepEqual(since.map((x) => x.tsMs), [2000, 3000, 4000, 20000]);
    assert.deepEqual(since.map((x) => [x.itemId, x.type, x.tsMs]),
      py.since.map((x) => [x.item_id, x.type, x.ts_ms]));
    const sku2 = st2.itemGet('sku-2').itemId;
    const c = st2.itemCounts(0, 10000, { type: 'view', cap: 2 });
    assert.ok(c.itemIds instanceof BigUint64Array);
    assert.deepEqual([...c.itemIds].map(Number), [sku2, st2.itemGet('sku-1').itemId]);
    assert.deepEqual([...c.counts].map(Number), [2, 1]);
    assert.deepEqual([...c.itemIds].map((id, i) => [Number(id), Number(c.counts[i])]),
      py.counts);
    const all = st2.itemCounts(0, 10000);
    assert.deepEqual([...all.itemIds].map((id, i) => [Number(id), Number(all.counts[i])]),
      py.all_counts);
  } finally {
    st2.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ALS.foldIn: the Python binding\'s vector on the same model', async () => {
  const dir = tmpdir();
  const users = new Uint32Array(300);
  const items = new Uint32Array(300);
  for (let i = 0; i < 300; i++) { users[i] = i % 20; items[i] = (i * 7 + (i % 20) * 3) % 25; }
  const als = new knytt.ALS({ factors: 6, iterations: 4, threads: 1, reg: 0.05 });
  await als.fit({ users, items, nusers: 20, nitems: 25 });
  const file = path.join(dir, 'm.als');
  als.save(file);
  const fi = [0, 5, 10];
  const fw = [1, 2.5, 0.5];
  const v = als.foldIn(fi, new Float32Array(fw));
  assert.ok(v instanceof Float32Array);
  assert.equal(v.length, 6);
  assert.ok(v.some((x) => x !== 0));
  const warm = als.foldIn(fi, fw, { start: v });
  const py = python(`
import json, sys, knytt
m = knytt.ALS.load(sys.argv[1])
v = m.fold_in([0, 5, 10], [1, 2.5, 0.5])
w = m.fold_in([0, 5, 10], [1, 2.5, 0.5], start=v)
print(json.dumps([[float(x) for x in v], [float(x) for x in w]]))
`, file);
  assert.deepEqual([...v], py[0]);
  assert.deepEqual([...warm], py[1]);
  assert.throws(() => als.foldIn([1, 2], [1]), { code: 'KNYTT_EINVAL' });
  assert.throws(() => als.foldIn([99], [1]), { code: 'KNYTT_EINVAL' });
  assert.throws(() => als.foldIn([1], [1], { start: [0, 0] }), { code: 'KNYTT_EINVAL' });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('embeddings: put, get, each match Python on the same store', () => {
  const dir = tmpdir();
  const db = path.join(dir, 'e.db');
  const st = new knytt.Store('sqlite:' + db);
  try {
    assert.equal(st.itemUpsert({ id: 'a', title: 'A' }), 1);
    assert.equal(st.itemUpsert({ id: 'b', title: 'B' }), 2);
    assert.equal(st.userUpsert('u'), 1);
    st.embeddingPut('item', 1, 'v1', new Float32Array([0.5, -1.25, 3]));
    st.embeddingPut('item', 2, 'v1', [1, 2, 3]);
    st.embeddingPut('item', 2, 'v2', [9]);
    st.embeddingPut('user', 1, 'v1', [7, 8]);
    const v = st.embeddingGet('item', 1, 'v1');
    assert.ok(v instanceof Float32Array);
    assert.deepEqual([...v], [0.5, -1.25, 3]);
    assert.deepEqual([...st.embeddingGet('item', 2, 'v2')], [9]);
    assert.throws(() => st.embeddingGet('item', 3, 'v1'), { code: 'KNYTT_ENOTFOUND' });
    assert.throws(() => st.embeddingGet('shop', 1, 'v1'), { code: 'KNYTT_EINVAL' });
    const all = st.embeddings('item', 'v1');
    assert.deepEqual([...all.keys()].sort(), [1, 2]);
    assert.deepEqual([...all.get(2)], [1, 2, 3]);
    assert.equal(st.embeddings('user', 'v1').size, 1);
  } finally {
    st.close();
  }
  const py = python(`
import json, sys, knytt
with knytt.Store("sqlite:" + sys.argv[1]) as st:
    print(json.dumps({"get": [float(x) for x in st.embedding_get("item", 1, "v1")],
        "all": {str(k): [float(x) for x in v]
                for k, v in st.embeddings("item", "v1").items()}}))
`, db);
  const st2 = new knytt.Store('sqlite:' + db);
  try {
    assert.deepEqual([...st2.embeddingGet('item', 1, 'v1')], py.get);
    const all = {};
    for (const [k, vec] of st2.embeddings('item', 'v1')) all[String(k)] = [...vec];
    assert.deepEqual(all, py.all);
  } finally {
    st2.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
