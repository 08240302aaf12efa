'use strict';
// Strings holding '\u0000' are refused before they reach C, where they
// would be cut short ('sku-1\u0000x' would address item 'sku-1').
const test = require('node:test');
const assert = require('node:assert/strict');
const os = require('os');
const path = require('path');
const knytt = require('..');

function refused(fn, what) {
  assert.throws(fn, (e) => e.code === 'KNYTT_EINVAL' && e.message.includes(what) &&
    e.message.includes('NUL'));
}

test('strings: NUL characters are refused, naming the argument', () => {
  const st = new knytt.Store();
  try {
    st.itemUpsert({ id: 'sku-1', title: 'Red shoe' });
    refused(() => st.itemGet('sku-1\u0000x'), 'id');
    refused(() => st.itemDelete('sku-1\u0000x'), 'id');
    refused(() => st.itemUpsert({ id: 'sku-2', title: 'a\u0000b' }), 'title');
    refused(() => st.userUpsert('al\u0000ice'), 'user');
    refused(() => st.interactionAdd({ user: 'alice', item: 'sku-1', type: 'vi\u0000ew' }), 'type');
    refused(() => st.search('red\u0000shoe'), 'query');
    assert.equal(st.itemCount(), 1);
    assert.equal(st.userCount(), 0);
    assert.equal(st.itemGet('sku-1').title, 'Red shoe');
  } finally {
    st.close();
  }
  refused(() => new knytt.Store('sqlite::memory:\u0000x'), 'uri');
  const ix = new knytt.Index(4);
  try {
    // refused before any file is touched: no directory is made
    refused(() => ix.save(path.join(os.tmpdir(), 'a\u0000b')), 'path');
  } finally {
    ix.close();
  }
});
