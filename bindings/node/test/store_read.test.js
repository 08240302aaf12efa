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

// The Python binding's view of db (json, snake_case keys).
function pythonView(db, logId) {
  const src = `
import json, sys, knytt
with knytt.Store("sqlite:" + sys.argv[1]) as st:
    print(json.dumps({"alice": st.user_get("alice"),
        "changed": st.items_changed(0),
        "log": st.search_log_get(int(sys.argv[2]))}))
`;
  const env = Object.assign({}, process.env, {
    PYTHONPATH: path.join(ROOT, 'bindings', 'python'),
    KNYTT_LIBRARY: process.env.KNYTT_LIBRARY || path.join(ROOT, 'build', 'libknytt.so'),
  });
  return JSON.parse(execFileSync(process.env.PYTHON || 'python3', ['-c', src, db, String(logId)],
    { env, encoding: 'utf8' }));
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
  } finally {
    st2.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
