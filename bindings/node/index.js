'use strict';
/*
 * knytt for Node: classes over the N-API addon (src/*.c), which is a thin
 * layer over libknytt's include/knytt.h.  This file only turns option
 * objects and camelCase names into the addon's positional calls.
 *
 * The addon is looked up in $KNYTT_NODE_ADDON, then in a source
 * checkout's build/node/knytt.node (make bindings), then in node-gyp's
 * build/Release/knytt.node.
 */
const path = require('path');
const fs = require('fs');

function loadAddon() {
  const tried = [];
  const candidates = [process.env.KNYTT_NODE_ADDON,
    path.join(__dirname, '..', '..', 'build', 'node', 'knytt.node'),
    path.join(__dirname, 'build', 'Release', 'knytt.node')].filter(Boolean);
  for (const p of candidates) {
    if (!fs.existsSync(p)) { tried.push(p + ' (absent)'); continue; }
    return require(p);
  }
  throw new Error('knytt: the native addon is not built (run make bindings, ' +
                  'or npm run build); tried ' + tried.join(', '));
}

const native = loadAddon();
// A training thread waiting for its progress callback must not hold up
// the exit (see kn_env in src/addon.c).
process.once('exit', () => native.shutdown());

const METRICS = { l2: 1, ip: 2, cosine: 3 };
const KINDS = { hnsw: 1, flat: 2 };
const QUANTS = { none: 0, int8: 1, int8_only: 2, int8Only: 2, f16: 3 };
const MODELS = { als: 1, twotower: 2, external: 3 };
const RECORDS = { items: 1, users: 2, interactions: 3 };
const FORMATS = { csv: 1, jsonl: 2, movielens: 3 };
const SCOPES = { secret: 1, public: 2 };
const OWNERS = { item: 1, user: 2 };
const EVENTS = { view: 0, click: 1, add_to_cart: 2, purchase: 3, rating: 4 };

/** Error codes of the library: { KNYTT_EINVAL: -1, ... }. */
const errors = native.errors();

function invalid(msg) {
  const e = new RangeError('KNYTT_EINVAL: ' + msg);
  e.code = 'KNYTT_EINVAL';
  e.status = -1;
  return e;
}

function choice(table, value, what) {
  if (!Object.prototype.hasOwnProperty.call(table, value)) {
    throw invalid(`${what} must be one of ${Object.keys(table).join(', ')}, ` +
                  `got ${JSON.stringify(value)}`);
  }
  return table[value];
}

function f32(v, what) {
  if (v instanceof Float32Array) return v;
  if (Array.isArray(v)) return Float32Array.from(v.flat());
  throw invalid(`${what} must be a Float32Array or an array of numbers`);
}

function u32(v, what) {
  if (v instanceof Uint32Array) return v;
  if (Array.isArray(v)) return Uint32Array.from(v);
  throw invalid(`${what} must be a Uint32Array or an array of integers`);
}

function u64(v, what) {
  if (v instanceof BigUint64Array) return v;
  if (Array.isArray(v)) {
    try {
      return BigUint64Array.from(v, (x) => {
        const b = BigInt(x);
        if (b < 0n) throw new RangeError();
        return b;
      });
    } catch (e) {
      throw invalid(`${what} must be non-negative integers`);
    }
  }
  throw invalid(`${what} must be a BigUint64Array or an array of integers`);
}

class Handle {
  constructor(h) { this._h = h; }
  /** Frees the native object.  Idempotent; throws KNYTT_EBUSY while an
   *  async call still runs on it. */
  close() {
    if (this._h) { native.close(this._h); this._h = null; }
  }
  get h() {
    if (!this._h) {
      const e = new Error('KNYTT_ESTATE: ' + this.constructor.name.toLowerCase() +
                          ' is closed');
      e.code = 'KNYTT_ESTATE';
      e.status = -9;
      throw e;
    }
    return this._h;
  }
}
if (Symbol.dispose) Handle.prototype[Symbol.dispose] = Handle.prototype.close;

/** A set of allowed labels as a bitset; reuse it across searches. */
class IdSet {
  constructor(ids) {
    let max = -1n;
    const list = [];
    for (const x of ids) {
      const b = BigInt(x);
      if (b < 0n) throw invalid('filter ids must be non-negative');
      list.push(b);
      if (b > max) max = b;
    }
    this.nbits = max + 1n;
    this.bits = new BigUint64Array(Math.max(1, Number((this.nbits + 63n) / 64n)));
    for (const b of list) this.bits[Number(b >> 6n)] |= 1n << (b & 63n);
    this.size = new Set(list).size;
  }
  has(label) {
    const b = BigInt(label);
    return b >= 0n && b < this.nbits &&
      ((this.bits[Number(b >> 6n)] >> (b & 63n)) & 1n) === 1n;
  }
}

function nativeFilter(filter) {
  if (filter === undefined || filter === null) return undefined;
  if (typeof filter === 'function') return filter;
  if (filter instanceof IdSet) return filter;
  if (typeof filter[Symbol.iterator] === 'function') return new IdSet(filter);
  throw invalid('filter must be a function, an IdSet or an iterable of labels');
}

/** Vector index (HNSW or flat) over uint64 labels. */
class Index extends Handle {
  constructor(dim, opts = {}, handle = null) {
    const o = opts || {};
    super(handle || native.indexOpen(dim,
      choice(METRICS, o.metric || 'l2', 'metric'),
      choice(KINDS, o.kind || 'hnsw', 'kind'), o.m || 0,
      o.efConstruction || 0, o.efSearch || 0,
      choice(QUANTS, o.quant || 'none', 'quant'), o.seed));
  }
  static load(file) { return new Index(0, null, native.indexLoad(String(file))); }
  get dim() { return native.indexInfo(this.h).dim; }
  get size() { return native.indexInfo(this.h).count; }
  memory() { return native.indexInfo(this.h).memory; }
  vectorMemory() { return native.indexInfo(this.h).vectorMemory; }
  trainQuant(vectors) { native.indexTrainQuant(this.h, f32(vectors, 'vectors')); }
  add(label, vector) { native.indexAdd(this.h, label, f32(vector, 'vector'), false); }
  upsert(label, vector) { native.indexAdd(this.h, label, f32(vector, 'vector'), true); }
  /** Adds many vectors (row-major) on a pool thread; all or nothing. */
  async addBatch(labels, vectors, { threads = 0 } = {}) {
    return native.indexAddBatch(this.h, u64(labels, 'labels'),
      f32(vectors, 'vectors'), threads);
  }
  remove(label) { native.indexRemove(this.h, label); }
  has(label) { return native.indexContains(this.h, label); }
  get(label) { return native.indexGet(this.h, label); }
  save(file) { native.indexSave(this.h, String(file)); }
  /** The k nearest labels: {labels: BigUint64Array, distances:
   *  Float32Array}, trimmed to the results found.  filter: a function
   *  (label: number) => boolean, an IdSet, or an iterable of labels. */
  search(query, k = 10, { ef = 0, filter } = {}) {
    if (!(k >= 1 && k <= 0xffffffff && Number.isInteger(k))) {
      throw invalid(`k must be an integer of at least 1, got ${k}`);
    }
    // C writes into these arrays; made here because typed arrays cost
    // less to allocate in JavaScript than through N-API.
    let labels = new BigUint64Array(k);
    let distances = new Float32Array(k);
    const count = native.indexSearch(this.h, query instanceof Float32Array ? query :
      f32(query, 'query'), ef, filter === undefined ? undefined :
      nativeFilter(filter), labels, distances);
    if (count < k) {
      labels = labels.subarray(0, count);
      distances = distances.subarray(0, count);
    }
    return { labels, distances, count };
  }
  /** Searches every row of queries on a pool thread: Promise of
   *  {labels, distances}, k per query (missing: 2^64-1 / Infinity). */
  async searchBatch(queries, k = 10, { ef = 0, threads = 0 } = {}) {
    return native.indexSearchBatch(this.h, f32(queries, 'queries'), k, ef,
      threads);
  }
}

function exactKnn(base, queries, k = 10, { metric = 'l2', dim } = {}) {
  const b = f32(base, 'base');
  const d = dim || (Array.isArray(base) && Array.isArray(base[0]) ?
    base[0].length : undefined);
  if (!d) throw invalid('dim is required for flat Float32Array input');
  return native.exactKnn(choice(METRICS, metric, 'metric'), d, b,
    f32(queries, 'queries'), k);
}

function distance(a, b, metric = 'l2') {
  return native.distance(choice(METRICS, metric, 'metric'), f32(a, 'a'),
    f32(b, 'b'));
}

function itemIn(item) {
  if (!item || typeof item !== 'object') throw invalid('an item is an object');
  const a = item.attributes;
  return Object.assign({}, item, {
    attributes: a === undefined || a === null || typeof a === 'string' ? a :
      JSON.stringify(a),
  });
}

function itemOut(it) {
  if (it.attributes) {
    try { it.attributes = JSON.parse(it.attributes); } catch (e) { /* text */ }
  }
  return it;
}

/** A store connection (SQLite or PostgreSQL); one thread at a time. */
class Store extends Handle {
  constructor(uri = 'sqlite::memory:', { tenant = 'default' } = {}, handle = null) {
    super(handle || native.storeOpen(uri));
    if (!handle && tenant !== null) {
      try { native.storeTenant(this._h, tenant, 2); } catch (e) { this.close(); throw e; }
    }
  }
  get backend() { return native.storeInfo(this.h).backend; }
  get schemaVersion() { return native.storeInfo(this.h).schemaVersion; }
  get tenant() { return native.storeInfo(this.h).tenant; }
  tenantCreate(name) { return native.storeTenant(this.h, name, 1); }
  tenantFind(name) { return native.storeTenant(this.h, name, 0); }
  useTenant(t) {
    native.storeUseTenant(this.h, typeof t === 'string' ? this.tenantFind(t) : t);
  }
  keyCreate(scope = 'secret') { return native.storeKey(this.h, 0, choice(SCOPES, scope, 'scope')); }
  keyLookup(key) { return native.storeKey(this.h, 1, key); }
  keyRevoke(key) { native.storeKey(this.h, 2, key); }
  itemUpsert(item) { return native.storeItemUpsert(this.h, itemIn(item)); }
  /** By external id (string) or internal id (number). */
  itemGet(id) { return itemOut(native.storeItemGet(this.h, id)); }
  itemDelete(id) { native.storeItemDelete(this.h, id); }
  itemCount() { return native.storeInfo(this.h).items; }
  userCount() { return native.storeInfo(this.h).users; }
  interactionCount() { return native.storeInfo(this.h).interactions; }
  search(query, { k = 10, category, priceMin, priceMax, inStockOnly = false } = {}) {
    return native.storeSearch(this.h, query, k, category, priceMin, priceMax,
      inStockOnly);
  }
  userUpsert(id, attributes) {
    return native.storeUserUpsert(this.h, id, attributes === undefined ||
      attributes === null || typeof attributes === 'string' ? attributes :
      JSON.stringify(attributes));
  }
  /** {user, item, type, weight, value, tsMs, eventId} -> false when the
   *  event id was seen before. */
  /** {id, userId, attributes, createdMs}; KNYTT_ENOTFOUND if unknown. */
  userGet(id) { return itemOut(native.storeUserGet(this.h, id)); }
  /** Items (deleted ones included) changed at or after sinceMs. */
  itemsChanged(sinceMs = 0) { return native.storeItemsChanged(this.h, sinceMs).map(itemOut); }
  /** Rows per import transaction (knytt_store_set_batch_size). */
  setBatchSize(rows) { native.storeSetBatchSize(this.h, rows); }
  interactionAdd(x) { return native.storeInteractionAdd(this.h, x); }
  /** Every interaction with tsMs >= sinceMs, in (tsMs, id) order. */
  interactionsSince(sinceMs = 0) { return native.storeInteractionsSince(this.h, sinceMs); }
  /** {itemIds, counts} (BigUint64Arrays), most counted first. */
  itemCounts(fromMs, toMs, { type, cap = 100 } = {}) {
    return native.storeItemCounts(this.h, fromMs, toMs, type, cap);
  }
  userRecent(user, n = 50) { return native.storeRecent(this.h, user, n, false); }
  itemRecent(item, n = 50) { return native.storeRecent(this.h, item, n, true); }
  favoriteSet(user, item) { native.storeFavorite(this.h, user, item, true); }
  favoriteUnset(user, item) { native.storeFavorite(this.h, user, item, false); }
  favoriteList(user, cap = 1000) { return native.storeFavoriteList(this.h, user, cap); }
  searchLog(query, { user, resultCount = 0 } = {}) {
    return native.storeSearchLog(this.h, query, user, resultCount);
  }
  /** {query, resultCount, clickedItem} of a search log entry. */
  searchLogGet(logId) { return native.storeSearchLogGet(this.h, logId); }
  searchClick(logId, item) { native.storeSearchClick(this.h, logId, item); }
  /** Stores an item's or user's vector under a version label. */
  embeddingPut(owner, id, version, vector) {
    native.storeEmbeddingPut(this.h, choice(OWNERS, owner, 'owner'), id, version,
      f32(vector, 'vector'));
  }
  /** The stored vector (Float32Array); KNYTT_ENOTFOUND if none. */
  embeddingGet(owner, id, version) {
    return native.storeEmbeddingGet(this.h, choice(OWNERS, owner, 'owner'), id, version);
  }
  /** Map id -> Float32Array of every embedding of that kind and version. */
  embeddings(owner, version) {
    return native.storeEmbeddings(this.h, choice(OWNERS, owner, 'owner'), version, new Map());
  }
  modelPut(name, blob, metadata) {
    return native.storeModelPut(this.h, name, blob, metadata === undefined ||
      metadata === null || typeof metadata === 'string' ? metadata :
      JSON.stringify(metadata));
  }
  modelGet(name, version = 0) {
    const m = native.storeModelGet(this.h, name, version);
    if (m.metadata) m.metadata = JSON.parse(m.metadata);
    return m;
  }
  /** Imports a file on a pool thread: Promise of {accepted, rejects:
   *  [{line, field, reason}]}. */
  async importFile(file, kind, { format = 'csv' } = {}) {
    return native.storeImport(this.h, String(file), choice(RECORDS, kind, 'kind'),
      choice(FORMATS, format, 'format'));
  }
}

function triple(v, a, b, c, what) {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v;
  if (typeof v !== 'object') throw invalid(`${what} must be an object`);
  return [v[a], v[b], v[c]];
}

/** The engine: recommendations, search, similar items and trending over
 *  a store, a vector index and a model. */
class Engine extends Handle {
  constructor(uri = 'sqlite::memory:', opts = {}) {
    const o = opts || {};
    const index = o.m || o.efConstruction || o.efSearch ?
      [o.m || 0, o.efConstruction || 0, o.efSearch || 0] : undefined;
    const als = o.als && !Array.isArray(o.als) ? [o.als.reg ?? 1, o.als.alpha ?? 1,
      o.als.iterations ?? 15] : o.als;
    super(native.engineOpen(uri, {
      model: o.model === undefined ? undefined : choice(MODELS, o.model, 'model'),
      dim: o.dim, excludeSeen: o.excludeSeen === undefined ? undefined : +o.excludeSeen,
      twotowerEpochs: o.twotowerEpochs, threads: o.threads,
      feedbackAsync: o.feedbackAsync ? 1 : undefined, index, als,
      taste: triple(o.taste, 'sessionHalfLifeS', 'sessionBlend',
        'historyHalfLifeDays', 'taste'),
      tenant: o.tenant, weights: o.weights,
    }));
    this._store = null;
    if (o.profileCache !== undefined && o.profileCache !== null) {
      try {
        this.setProfileCache(o.profileCache);
      } catch (err) {
        this.close();
        throw err;
      }
    }
  }
  /** The memory budget of the shoppers' profiles in bytes (0: the
   *  default, 64 MiB; Infinity: no limit; a number or a BigInt).  Over
   *  it, the least recently used idle profiles are evicted and loaded
   *  again from the store when their shopper returns; the answers are the
   *  same.  Lowering it evicts at once. */
  setProfileCache(bytes) {
    native.engineSetProfileCache(this.h,
      bytes === Infinity ? 0xffffffffffffffffn : bytes);
  }
  /** {budget (bytes, Infinity: no limit), bytes, profiles, evictions
   *  (since open)} of the profile cache now. */
  profileCacheInfo() { return native.engineProfileCacheInfo(this.h); }
  /** The engine's own store (valid until close; not while engine calls
   *  run elsewhere). */
  get store() {
    if (!this._store || !this._store._h) {
      this._store = new Store(null, {}, native.engineStore(this.h));
    }
    return this._store;
  }
  itemUpsert(item, vector) {
    native.engineItemUpsert(this.h, itemIn(item), vector === undefined ||
      vector === null ? undefined : f32(vector, 'vector'));
  }
  itemDelete(id) { native.engineSimple(this.h, 0, id); }
  sync() { return native.engineSimple(this.h, 1); }
  flush() { native.engineSimple(this.h, 2); }
  feedback(user, item, type = 'view', { value = 0, tsMs = 0 } = {}) {
    native.engineFeedback(this.h, user, item, type, value, tsMs);
  }
  recommend(user, { k = 10, filter, mmrLambda, excludeSeen } = {}) {
    return native.engineRecommend(this.h, user, k, filter, mmrLambda, excludeSeen);
  }
  similar(item, { k = 10, filter } = {}) {
    return native.engineSimilar(this.h, item, k, filter);
  }
  /** Hybrid search; the results array carries the search log id as
   *  .logId (for store.searchClick). */
  search(text, { k = 10, vector, user, filter } = {}) {
    const r = native.engineSearch(this.h, text, vector === undefined ||
      vector === null ? undefined : f32(vector, 'vector'), k, filter, user);
    r.results.logId = r.logId;
    return r.results;
  }
  trending({ k = 10, window = 86400, category } = {}) {
    return native.engineTrending(this.h, k, window, category);
  }
  /** The unit vector search uses for text (the words learned from the
   *  search log, the two-tower text path or the external embedder), as
   *  a Float32Array of engine.dim values; null when no path knows a
   *  word of it.  search(null, { vector }) searches by meaning alone. */
  embedQuery(text) { return native.engineEmbedQuery(this.h, text); }
  /** The dimension of the engine's vectors. */
  get dim() { return native.engineDim(this.h); }
  /** Trains on a pool thread; onProgress({epoch, epochs, loss, elapsed,
   *  eta}) runs on the main thread after each epoch, and returning true
   *  cancels (the Promise rejects with KNYTT_ECANCELED). */
  async train({ onProgress } = {}) { return native.engineTrain(this.h, onProgress); }
  /** Starts training on the engine's background thread (KNYTT_EBUSY if
   *  one runs); poll trainStatus() for progress, trainWait() to join. */
  trainStart() { native.engineTrainStart(this.h); }
  /** Promise of the status once the background job ended; rejects with
   *  its error. */
  async trainWait() { return native.engineTrainWait(this.h); }
  trainStatus() { return native.engineTrainStatus(this.h); }
  /** Marks a favorite (store) and records the "favorite" event. */
  favorite(user, item) {
    this.store.favoriteSet(user, item);
    this.feedback(user, item, 'favorite');
  }
  unfavorite(user, item) { this.store.favoriteUnset(user, item); }
  favorites(user) {
    const st = this.store;
    return st.favoriteList(user).map((id) => st.itemGet(id).id);
  }
  close() { this._store = null; super.close(); }
}

function eventTypes(types) {
  if (!types) return undefined;
  if (types instanceof Uint32Array) return types;
  return Uint32Array.from(types, (t) => (typeof t === 'string' ?
    choice(EVENTS, t, 'type') : t));
}

function maxPlusOne(arr) {
  let m = -1;
  for (const x of arr) if (x > m) m = x;
  return m + 1;
}

/** Implicit ALS (Hu, Koren & Volinsky 2008). */
class ALS extends Handle {
  constructor(opts = {}, handle = null) {
    const o = Object.assign({}, opts);
    if (o.solver !== undefined) o.solver = choice({ cg: 1, cholesky: 2 }, o.solver, 'solver');
    super(handle || native.alsCreate(o));
  }
  static load(src) {
    return new ALS({}, native.alsLoad(Buffer.isBuffer(src) ? src : String(src)));
  }
  /** Trains on a pool thread: Promise of this. */
  async fit({ users, items, types, values, nusers = 0, nitems = 0, onProgress } = {}) {
    const u = u32(users, 'users');
    const it = u32(items, 'items');
    await native.alsFit(this.h, u, it, nusers, nitems, eventTypes(types),
      values ? f32(values, 'values') : undefined, onProgress);
    return this;
  }
  get factors() { return native.alsGet(this.h, 0).factors; }
  get users() { return native.alsGet(this.h, 0).users; }
  get items() { return native.alsGet(this.h, 0).items; }
  /** users x factors, row-major. */
  userFactors() { return native.alsGet(this.h, 1); }
  itemFactors() { return native.alsGet(this.h, 2); }
  score(user, items) {
    return native.alsScore(this.h, user, items === undefined ? undefined :
      u32(items, 'items'));
  }
  /** A user vector (Float32Array, factors) from (item, weight) pairs by
   *  the epoch's own solve; start: the warm start (zeros by default). */
  foldIn(items, weights, { start } = {}) {
    return native.alsFoldIn(this.h, u32(items, 'items'), f32(weights, 'weights'),
      start === undefined || start === null ? null : f32(start, 'start'));
  }
  save(file) { native.modelSave(this.h, String(file)); }
  toBuffer() { return native.alsGet(this.h, 3); }
}

/** The two-tower retrieval model (cold start, text queries). */
class TwoTower extends Handle {
  constructor(opts = {}, handle = null) { super(handle || native.ttCreate(opts)); }
  static load(src) {
    return new TwoTower({}, native.ttLoad(Buffer.isBuffer(src) ? src : String(src)));
  }
  async fit({ users, items, nusers, nitems, features, weights, onProgress } = {}) {
    const u = u32(users, 'users');
    const it = u32(items, 'items');
    await native.ttFit(this.h, u, it, nusers || maxPlusOne(u),
      nitems || maxPlusOne(it), features, weights ? f32(weights, 'weights') :
        undefined, onProgress);
    return this;
  }
  get dim() { return native.ttGet(this.h, 0).dim; }
  get users() { return native.ttGet(this.h, 0).users; }
  get items() { return native.ttGet(this.h, 0).items; }
  itemEmbeddings() { return native.ttGet(this.h, 2); }
  userEmbeddings() { return native.ttGet(this.h, 1); }
  embedItem(features) { return native.ttEmbed(this.h, 0, features || {}); }
  embedQuery(text) { return native.ttEmbed(this.h, 1, text); }
  embedUser(user = null, recent = []) {
    return native.ttEmbed(this.h, 2, user, u32(recent, 'recent'));
  }
  save(file) { native.modelSave(this.h, String(file)); }
  toBuffer() { return native.ttGet(this.h, 3); }
}

const v = native.version();
/** Text embeddings from an OpenAI-compatible /v1/embeddings server.
 *  Opening does not contact it; probe() and embed() do, on a pool
 *  thread, and return Promises. */
class Embedder extends Handle {
  constructor(url, { model, apiKey, timeoutMs = 0, dim = 0 } = {}) {
    super(native.embedderOpen(url, model, apiKey, timeoutMs, dim));
  }
  /** The dimension: set or learned from an answer; 0 while unknown. */
  get dim() { return native.embedderDim(this.h); }
  /** Promise of the dimension (one request if it is not known yet). */
  probe() { return native.embedderEmbed(this.h, null); }
  /** Promise of texts.length x dim floats, row-major (Float32Array);
   *  bad arguments throw at once. */
  embed(texts) { return native.embedderEmbed(this.h, texts); }
}

module.exports = {
  Index, IdSet, Store, Engine, ALS, TwoTower, Embedder, exactKnn, distance, errors,
  version: v.version, simd: v.simd, NO_LABEL: 0xffffffffffffffffn,
};
