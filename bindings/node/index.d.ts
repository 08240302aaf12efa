// Type declarations of the knytt Node binding (index.js).

/** An Error from libknytt: code is the error's name ("KNYTT_EINVAL"),
 *  status its negative value; the message is the library's detail. */
export interface KnyttError extends Error {
  code: 'KNYTT_EINVAL' | 'KNYTT_ENOMEM' | 'KNYTT_EIO' | 'KNYTT_ECORRUPT' |
    'KNYTT_ENOTFOUND' | 'KNYTT_EEXIST' | 'KNYTT_ERANGE' | 'KNYTT_EVERSION' |
    'KNYTT_ESTATE' | 'KNYTT_EDB' | 'KNYTT_EAUTH' | 'KNYTT_ETIMEDOUT' |
    'KNYTT_EPROTO' | 'KNYTT_ENOTSUP' | 'KNYTT_ECANCELED' | 'KNYTT_EBUSY';
  status: number;
  /** The input field at fault ("price", "type", ...), as the library
   *  names it (knytt_errfield), when the failure named one. */
  field?: string;
}

/** Error names to values: { KNYTT_EINVAL: -1, ... }. */
export const errors: Record<string, number>;
export const version: string;
export const simd: string;
export const NO_LABEL: bigint;

export type Label = number | bigint;
export type Vector = Float32Array | number[];
export type Metric = 'l2' | 'ip' | 'cosine';

interface Closable {
  /** Frees the native object; idempotent.  Throws KNYTT_EBUSY while an
   *  async call still runs on it. */
  close(): void;
}

export interface SearchResult {
  labels: BigUint64Array;
  distances: Float32Array;
  count: number;
}

export interface IndexOptions {
  metric?: Metric;
  kind?: 'hnsw' | 'flat';
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  quant?: 'none' | 'int8' | 'int8_only' | 'f16';
  seed?: number | bigint;
}

export class IdSet {
  constructor(ids: Iterable<Label>);
  readonly size: number;
  readonly nbits: bigint;
  readonly bits: BigUint64Array;
  has(label: Label): boolean;
}

export type Filter = ((label: number) => boolean) | IdSet | Iterable<Label>;

export class Index implements Closable {
  constructor(dim: number, opts?: IndexOptions);
  static load(path: string): Index;
  readonly dim: number;
  readonly size: number;
  memory(): number;
  vectorMemory(): number;
  trainQuant(vectors: Vector): void;
  add(label: Label, vector: Vector): void;
  upsert(label: Label, vector: Vector): void;
  addBatch(labels: BigUint64Array | Label[], vectors: Vector,
    opts?: { threads?: number }): Promise<void>;
  remove(label: Label): void;
  has(label: Label): boolean;
  get(label: Label): Float32Array;
  save(path: string): void;
  search(query: Vector, k?: number, opts?: { ef?: number; filter?: Filter }): SearchResult;
  searchBatch(queries: Vector, k?: number,
    opts?: { ef?: number; threads?: number }): Promise<{ labels: BigUint64Array; distances: Float32Array }>;
  close(): void;
}

export function exactKnn(base: Vector | number[][], queries: Vector | number[][], k?: number,
  opts?: { metric?: Metric; dim?: number }): { ids: BigUint64Array; distances: Float32Array };
export function distance(a: Vector, b: Vector, metric?: Metric): number;

export interface Item {
  id: string;
  title?: string | null;
  description?: string | null;
  category?: string | null;
  price?: number;
  currency?: string | null;
  inStock?: boolean;
  quality?: number;
  imageUrl?: string | null;
  attributes?: string | Record<string, unknown> | null;
}

export interface StoredItem extends Item {
  itemId: number;
  createdMs: number;
  updatedMs: number;
  deleted: boolean;
}

export interface Interaction {
  user: string;
  item: string;
  type?: string;
  weight?: number;
  value?: number | null;
  tsMs?: number;
  eventId?: string | null;
}

export interface StoredInteraction extends Interaction {
  id: number;
  userId: number;
  itemId: number;
}

export interface ImportResult {
  accepted: number;
  rejects: { line: number; field: string; reason: string }[];
}

export class Store implements Closable {
  constructor(uri?: string, opts?: { tenant?: string | null });
  readonly backend: string;
  readonly schemaVersion: number;
  readonly tenant: number;
  tenantCreate(name: string): number;
  tenantFind(name: string): number;
  useTenant(tenant: number | string): void;
  keyCreate(scope?: 'secret' | 'public'): string;
  keyLookup(key: string): { tenant: number; scope: 'secret' | 'public' };
  keyRevoke(key: string): void;
  itemUpsert(item: Item): number;
  itemGet(id: string | number): StoredItem;
  itemDelete(id: string): void;
  itemCount(): number;
  userCount(): number;
  interactionCount(): number;
  search(query: string, opts?: { k?: number; category?: string; priceMin?: number;
    priceMax?: number; inStockOnly?: boolean }): { itemId: number; score: number }[];
  userUpsert(id: string, attributes?: string | Record<string, unknown> | null): number;
  /** KNYTT_ENOTFOUND when the user is unknown. */
  userGet(id: string): { id: string; userId: number; attributes: unknown;
    createdMs: number };
  /** Items changed at or after sinceMs, deleted ones included. */
  itemsChanged(sinceMs?: number): StoredItem[];
  /** Rows per import transaction. */
  setBatchSize(rows: number): void;
  interactionAdd(x: Interaction): boolean;
  interactionsSince(sinceMs?: number): StoredInteraction[];
  itemCounts(fromMs: number, toMs: number, opts?: { type?: string; cap?: number }):
    { itemIds: BigUint64Array; counts: BigUint64Array };
  userRecent(user: string, n?: number): StoredInteraction[];
  itemRecent(item: string, n?: number): StoredInteraction[];
  favoriteSet(user: string, item: string): void;
  favoriteUnset(user: string, item: string): void;
  favoriteList(user: string, cap?: number): number[];
  searchLog(query: string, opts?: { user?: string; resultCount?: number }): number;
  searchLogGet(logId: number): { query: string; resultCount: number;
    clickedItem: number };
  searchClick(logId: number, item: string): void;
  embeddingPut(owner: 'item' | 'user', id: number, version: string,
    vector: Float32Array | number[]): void;
  embeddingGet(owner: 'item' | 'user', id: number, version: string): Float32Array;
  embeddings(owner: 'item' | 'user', version: string): Map<number, Float32Array>;
  modelPut(name: string, blob: Uint8Array, metadata?: string | object | null): number;
  modelGet(name: string, version?: number): { blob: Buffer; metadata: unknown;
    version: number; createdMs: number };
  importFile(path: string, kind: 'items' | 'users' | 'interactions',
    opts?: { format?: 'csv' | 'jsonl' | 'movielens' }): Promise<ImportResult>;
  close(): void;
}

export interface BusinessFilter {
  category?: string;
  priceMin?: number;
  priceMax?: number;
  inStockOnly?: boolean;
  minQuality?: number;
}

export interface Rec {
  id: string;
  itemId: number;
  score: number;
  reason: 'taste' | 'session' | 'similar' | 'trending' | 'popular' | 'keyword' |
    'semantic' | 'hybrid' | 'coview' | string;
  because: number;
}

export interface Progress {
  epoch: number;
  epochs: number;
  loss: number;
  elapsed: number;
  eta: number;
}

/** Return true to cancel training. */
export type OnProgress = (p: Progress) => boolean | void;

export interface TrainStatus {
  running: boolean;
  lastRc: number;
  epoch: number;
  epochs: number;
  loss: number;
  modelVersion: number;
  itemsIndexed: number;
}

export interface EngineOptions {
  model?: 'als' | 'twotower' | 'external';
  dim?: number;
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  weights?: Record<string, number>;
  taste?: { sessionHalfLifeS: number; sessionBlend: number; historyHalfLifeDays: number };
  excludeSeen?: boolean;
  als?: { reg?: number; alpha?: number; iterations?: number };
  twotowerEpochs?: number;
  tenant?: string;
  threads?: number;
  feedbackAsync?: boolean;
  /** Bytes of shopper profiles kept in memory (0: 64 MiB; Infinity: no
   *  limit); see Engine.setProfileCache. */
  profileCache?: number | bigint;
}

export class Engine implements Closable {
  constructor(uri?: string, opts?: EngineOptions);
  readonly store: Store;
  /** Budget of the shoppers' profiles in bytes (0: 64 MiB; Infinity: no
   *  limit). */
  setProfileCache(bytes: number | bigint): void;
  profileCacheInfo(): { budget: number; bytes: number; profiles: number;
    evictions: number };
  itemUpsert(item: Item, vector?: Vector): void;
  itemDelete(id: string): void;
  sync(): number;
  flush(): void;
  feedback(user: string, item: string, type?: string,
    opts?: { value?: number; tsMs?: number }): void;
  recommend(user: string, opts?: { k?: number; filter?: BusinessFilter;
    mmrLambda?: number; excludeSeen?: boolean }): Rec[];
  similar(item: string, opts?: { k?: number; filter?: BusinessFilter }): Rec[];
  search(text: string | null, opts?: { k?: number; vector?: Vector; user?: string;
    filter?: BusinessFilter }): Rec[] & { logId: number };
  trending(opts?: { k?: number; window?: number; category?: string }): Rec[];
  /** The vector search uses for text; null when no path knows a word. */
  embedQuery(text: string): Float32Array | null;
  readonly dim: number;
  train(opts?: { onProgress?: OnProgress }): Promise<TrainStatus>;
  /** Background training; progress through trainStatus(). */
  trainStart(): void;
  trainWait(): Promise<TrainStatus>;
  trainStatus(): TrainStatus;
  favorite(user: string, item: string): void;
  unfavorite(user: string, item: string): void;
  favorites(user: string): string[];
  close(): void;
}

export interface AlsOptions {
  factors?: number;
  reg?: number;
  alpha?: number;
  iterations?: number;
  regExponent?: number;
  seed?: number;
  threads?: number;
  solver?: 'cg' | 'cholesky';
  cgSteps?: number;
}

export class ALS implements Closable {
  constructor(opts?: AlsOptions);
  static load(src: string | Buffer): ALS;
  fit(data: { users: Uint32Array | number[]; items: Uint32Array | number[];
    types?: Uint32Array | (string | number)[]; values?: Vector; nusers?: number;
    nitems?: number; onProgress?: OnProgress }): Promise<ALS>;
  readonly factors: number;
  readonly users: number;
  readonly items: number;
  userFactors(): Float32Array;
  itemFactors(): Float32Array;
  score(user: number, items?: Uint32Array | number[]): Float32Array;
  /** A user vector from (item, weight) pairs by the epoch's own solve. */
  foldIn(items: Uint32Array | number[], weights: Float32Array | number[],
    opts?: { start?: Float32Array | number[] }): Float32Array;
  save(path: string): void;
  toBuffer(): Buffer;
  close(): void;
}

export interface ItemFeatures {
  title?: string | null;
  description?: string | null;
  category?: string | null;
  price?: number;
}

/** Text embeddings from an OpenAI-compatible /v1/embeddings server. */
export class Embedder implements Closable {
  constructor(url: string, opts?: { model?: string; apiKey?: string; timeoutMs?: number;
    dim?: number });
  readonly dim: number;
  probe(): Promise<number>;
  /** texts.length x dim floats, row-major. */
  embed(texts: string[]): Promise<Float32Array>;
  close(): void;
}

export class TwoTower implements Closable {
  constructor(opts?: { dim?: number; epochs?: number; batch?: number; lr?: number;
    temperature?: number; seed?: number; threads?: number; buckets?: number;
    history?: number; idDropout?: number });
  static load(src: string | Buffer): TwoTower;
  fit(data: { users: Uint32Array | number[]; items: Uint32Array | number[];
    nusers?: number; nitems?: number; features?: ItemFeatures[]; weights?: Vector;
    onProgress?: OnProgress }): Promise<TwoTower>;
  readonly dim: number;
  readonly users: number;
  readonly items: number;
  itemEmbeddings(): Float32Array;
  userEmbeddings(): Float32Array;
  embedItem(features: ItemFeatures): Float32Array;
  embedQuery(text: string): Float32Array;
  embedUser(user?: number | null, recent?: Uint32Array | number[]): Float32Array;
  save(path: string): void;
  toBuffer(): Buffer;
  close(): void;
}
