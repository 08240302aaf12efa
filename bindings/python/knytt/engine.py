"""knytt.Engine (knytt_engine): recommend, search, similar, trending,
feedback and training over a store, a vector index and a model."""

import ctypes
import math
from collections import namedtuple

from . import _arrays as A
from ._lib import (lib, Filter, Result, RecOptions, TrainStatus,
                   ProfileCacheInfo, PROGRESS_FN, MAX_ID)
from .errors import check, error, EINVAL
from .store import Store, item_struct, _b, _s

MODELS = {"als": 1, "twotower": 2, "external": 3}

#: One answer: external id, store id, score (higher is better), reason
#: ("taste", "similar", ...) and the store id of the item that led here.
Rec = namedtuple("Rec", "id item_id score reason because")

#: Training progress: epoch (1-based), epochs, loss, elapsed s, eta s.
ProgressInfo = namedtuple("ProgressInfo", "epoch epochs loss elapsed eta")

_REASONS = {}


def _reason(code):
    name = _REASONS.get(code)
    if name is None:
        name = _REASONS[code] = lib.knytt_reason_name(code).decode()
    return name


def make_filter(filter=None, **kw):
    """A knytt_filter from a dict or keywords: category, price_min,
    price_max, in_stock_only, min_quality.  None when nothing is set."""
    d = dict(filter or {}, **kw)
    if not d:
        return None
    unknown = set(d) - {"category", "price_min", "price_max",
                        "in_stock_only", "min_quality"}
    if unknown:
        raise EINVAL("unknown filter field(s): %s"
                     % ", ".join(sorted(unknown)))
    f = Filter()
    lib.knytt_filter_init_size(ctypes.byref(f), ctypes.sizeof(f))
    if d.get("category") is not None:
        f.category_prefix = _b(d["category"], "category")
    if d.get("price_min") is not None:
        f.price_min = float(d["price_min"])
    if d.get("price_max") is not None:
        f.price_max = float(d["price_max"])
    f.in_stock_only = 1 if d.get("in_stock_only") else 0
    if d.get("min_quality") is not None:
        f.min_quality = float(d["min_quality"])
    return f


def _results(buf, n):
    return [Rec(r.ext_id.decode("utf-8", "replace"), r.item_id, r.score,
                _reason(r.reason), r.because) for r in buf[:n]]



def _result_array(k):
    """Room for @k results, out[0].struct_size set: the library writes at
    that stride and only the members this mirror of knytt_result holds.
    A k below 1 still gets one element; the library rejects the k."""
    n = int(k)
    out = (Result * (n if n > 0 else 1))()
    out[0].struct_size = ctypes.sizeof(Result)
    return out

class Progress:
    """Wraps a Python progress callback as a knytt_progress_fn.

    The callback gets a ProgressInfo and may return True to cancel.  An
    exception in it cancels training and is raised by the training call
    (through raise_if_failed)."""

    def __init__(self, fn):
        self.fn, self.exc = fn, None
        self.c = PROGRESS_FN(self._call) if fn is not None else PROGRESS_FN()

    def _call(self, ctx, p):
        p = p.contents
        try:
            stop = self.fn(ProgressInfo(p.epoch, p.epochs, p.loss, p.elapsed,
                                        p.eta))
            return 1 if stop else 0
        except BaseException as exc:
            if self.exc is None:
                self.exc = exc
            return 1

    def finish(self, rc):
        if self.exc is not None:
            raise self.exc
        return check(rc)


class Engine:
    """The engine over a store URI:

        with knytt.Engine("sqlite:shop.db", model="als", dim=32) as e:
            e.feedback("alice", "sku-1", "purchase")
            e.train(progress=print)
            for r in e.recommend("alice", 10, category="shoes"):
                print(r.id, r.score, r.reason)

    Settings (keywords): model ("als", "twotower", "external"), dim,
    m / ef_construction / ef_search, weights ({"purchase": 8, ...}),
    taste ((session_half_life_s, session_blend, history_half_life_days)),
    exclude_seen, als ((reg, alpha, iterations)), twotower_epochs,
    tenant, threads, feedback_async, profile_cache (bytes of shopper
    profiles kept in memory; math.inf: no limit; see set_profile_cache).
    Queries and feedback may come from many threads at once; close() must
    not race with them.
    """

    def __init__(self, uri="sqlite::memory:", model=None, dim=None, m=0,
                 ef_construction=0, ef_search=0, weights=None, taste=None,
                 exclude_seen=None, als=None, twotower_epochs=None,
                 tenant=None, threads=None, feedback_async=False,
                 profile_cache=None):
        h = ctypes.c_void_p()
        check(lib.knytt_engine_create(ctypes.byref(h)))
        self._h, self._store, self._training = h.value, None, None
        try:
            self._configure(model, dim, m, ef_construction, ef_search,
                            weights, taste, exclude_seen, als,
                            twotower_epochs, tenant, threads, feedback_async)
            if profile_cache is not None:
                self.set_profile_cache(profile_cache)
            check(lib.knytt_engine_open(self._h, _b(uri, "uri")))
        except BaseException:
            self.close()
            raise

    def _configure(self, model, dim, m, efc, ef, weights, taste,
                   exclude_seen, als, tt_epochs, tenant, threads, fb_async):
        h = self._h
        if model is not None:
            if model not in MODELS:
                raise EINVAL("model must be one of als, twotower, external, "
                             "got %r" % (model,))
            check(lib.knytt_engine_set_model(h, MODELS[model]))
        if dim is not None:
            check(lib.knytt_engine_set_dim(h, int(dim)))
        if m or efc or ef:
            check(lib.knytt_engine_set_index(h, int(m), int(efc), int(ef)))
        for name, w in (weights or {}).items():
            check(lib.knytt_engine_set_weight(h, _b(name, "name"), float(w)))
        if taste is not None:
            check(lib.knytt_engine_set_taste(h, *[float(x) for x in taste]))
        if exclude_seen is not None:
            check(lib.knytt_engine_set_exclude_seen(h, int(exclude_seen)))
        if als is not None:
            reg, alpha, iters = als
            check(lib.knytt_engine_set_als(h, reg, alpha, int(iters)))
        if tt_epochs is not None:
            check(lib.knytt_engine_set_twotower(h, int(tt_epochs)))
        if tenant is not None:
            check(lib.knytt_engine_set_tenant(h, _b(tenant, "tenant")))
        if threads is not None:
            check(lib.knytt_engine_set_threads(h, int(threads)))
        if fb_async:
            check(lib.knytt_engine_set_feedback_async(h, 1))

    def set_profile_cache(self, nbytes):
        """The memory budget of the shoppers' profiles in bytes (0: the
        default, 64 MiB; math.inf: no limit).  Over it, the least recently
        used idle profiles are evicted and loaded again from the store when
        their shopper returns; answers are the same.  Lowering it while
        open evicts at once."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, (int, float)):
            raise EINVAL("profile_cache must be a number of bytes, got %r"
                         % (nbytes,), field="profile_cache")
        if nbytes == math.inf:
            nbytes = 2 ** 64 - 1
        elif (isinstance(nbytes, float) and not nbytes.is_integer()) or \
                not 0 <= nbytes < 2 ** 64 - 1:
            raise EINVAL("profile_cache must be a whole number of bytes "
                         "from 0, or math.inf, got %r" % (nbytes,),
                         field="profile_cache")
        check(lib.knytt_engine_set_profile_cache(self.handle, int(nbytes)))

    def profile_cache_info(self):
        """The profile cache now: {"budget" (bytes, math.inf for no limit),
        "bytes", "profiles", "evictions" (since open)}."""
        info = ProfileCacheInfo()
        info.struct_size = ctypes.sizeof(ProfileCacheInfo)
        check(lib.knytt_engine_profile_cache_info(self.handle,
                                                  ctypes.byref(info)))
        budget = math.inf if info.budget == 2 ** 64 - 1 else info.budget
        return {"budget": budget, "bytes": info.bytes,
                "profiles": info.profiles, "evictions": info.evictions}

    def close(self):
        """Closes the engine (waits for a background training).
        Idempotent."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.knytt_engine_close(h)
        self._store = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if not self._h:
            raise error(-9, "engine is closed")
        return self._h

    @property
    def store(self):
        """The engine's own Store (borrowed: valid until close; not to be
        used while engine calls run on other threads)."""
        if self._store is None:
            self._store = Store(_borrow=lib.knytt_engine_store(self.handle),
                                _owner=self)
        return self._store

    # -- catalog and events -------------------------------------------------
    def item_upsert(self, item=None, vector=None, **fields):
        """Upserts an item (dict or keywords) and makes it searchable at
        once; @vector (dim floats) is its embedding if given."""
        it = item_struct(dict(item or {}, **fields))
        ptr, dim, keep = None, 0, None
        if vector is not None:
            v = A.vectors(vector, "vector", 1)
            ptr, dim, keep = v.ptr, v.dim, v.keep
        check(lib.knytt_engine_item_upsert(self.handle, ctypes.byref(it), ptr,
                                           dim))
        del keep

    def item_delete(self, ext_id):
        check(lib.knytt_engine_item_delete(self.handle, _b(ext_id, "ext_id")))

    def sync(self):
        """Re-reads items changed in the store (after an import through
        engine.store); returns how many changed."""
        return check(lib.knytt_engine_sync(self.handle))

    def feedback(self, user, item, type="view", value=0.0, ts_ms=0):
        """Records an event; the user's taste changes before it returns."""
        check(lib.knytt_engine_feedback(self.handle, _b(user, "user"), _b(item, "item"),
                                        _b(type, "type"), float(value), int(ts_ms)))

    def flush(self):
        check(lib.knytt_engine_flush(self.handle))

    # -- favorites (through the store) ------------------------------------------
    def favorite(self, user, item):
        """Marks @item a favorite of @user (and records the event, which
        moves the user's taste)."""
        self.store.favorite_set(user, item)
        self.feedback(user, item, "favorite")

    def unfavorite(self, user, item):
        self.store.favorite_unset(user, item)

    def favorites(self, user, cap=1000):
        """External ids of @user's favorites, newest first."""
        st = self.store
        return [st.item_get_id(i)["id"] for i in st.favorite_list(user, cap)]

    # -- queries ----------------------------------------------------------------
    def recommend(self, user, k=10, filter=None, mmr_lambda=None,
                  exclude_seen=None, **filter_fields):
        """Up to k Rec for @user within the filter, best first."""
        f = make_filter(filter, **filter_fields)
        opt = None
        if mmr_lambda is not None or exclude_seen is not None:
            opt = RecOptions()
            lib.knytt_rec_options_init(ctypes.byref(opt))
            if mmr_lambda is not None:
                opt.mmr_lambda = float(mmr_lambda)
            if exclude_seen is not None:
                opt.exclude_seen = int(exclude_seen)
        out = _result_array(k)
        n = check(lib.knytt_engine_recommend(
            self.handle, _b(user, "user"), k, f and ctypes.byref(f),
            opt and ctypes.byref(opt), out))
        return _results(out, n)

    def similar(self, item, k=10, filter=None, **filter_fields):
        f = make_filter(filter, **filter_fields)
        out = _result_array(k)
        n = check(lib.knytt_engine_similar(self.handle, _b(item, "item"), k,
                                           f and ctypes.byref(f), out))
        return _results(out, n)

    def search(self, text=None, k=10, vector=None, user=None, filter=None,
               with_log_id=False, **filter_fields):
        """Hybrid keyword + vector search.  With with_log_id, returns
        (results, log id) for store.search_click."""
        f = make_filter(filter, **filter_fields)
        ptr, dim, keep = None, 0, None
        if vector is not None:
            v = A.vectors(vector, "vector", 1)
            ptr, dim, keep = v.ptr, v.dim, v.keep
        out = _result_array(k)
        lid = ctypes.c_uint64()
        n = check(lib.knytt_engine_search(
            self.handle, _b(text, "text"), ptr, dim, k, f and ctypes.byref(f),
            _b(user, "user"), out, ctypes.byref(lid)))
        del keep
        res = _results(out, n)
        return (res, lid.value) if with_log_id else res

    def embed_query(self, text):
        """The unit vector search would use for @text (the search words
        learned from the search log, the two-tower text path or the
        external embedder), as a float32 array (a list without numpy);
        None when no path knows a word of it.  Pass it to
        search(vector=...) to search by meaning alone."""
        dim = self.dim
        buf, arr = A.out_f32(dim)
        n = check(lib.knytt_engine_embed_query(
            self.handle, _b(text, "text"), buf, dim))
        return (arr if A.HAVE_NUMPY else list(arr)) if n else None

    @property
    def dim(self):
        """The dimension of the engine's vectors (the stored model's when
        none was set)."""
        return lib.knytt_engine_dim(self.handle)

    def trending(self, k=10, window=86400, category=None):
        out = _result_array(k)
        n = check(lib.knytt_engine_trending(self.handle, k, float(window),
                                            _b(category, "category"), out))
        return _results(out, n)

    # -- training ---------------------------------------------------------------
    def train(self, progress=None):
        """Trains the model on every stored interaction and swaps it in.
        @progress(ProgressInfo) is called after each epoch (from the
        training thread); returning True cancels (ECANCELED)."""
        p = Progress(progress)
        return p.finish(lib.knytt_engine_train(self.handle, p.c, None))

    def train_start(self, progress=None):
        """Starts training in the background; train_wait() joins it."""
        p = Progress(progress)
        check(lib.knytt_engine_train_start(self.handle, p.c, None))
        self._training = p   # the C callback must outlive the job

    def train_wait(self):
        p, self._training = self._training, None
        rc = lib.knytt_engine_train_wait(self.handle)
        return p.finish(rc) if p is not None else check(rc)

    def train_status(self):
        """{"running", "last_rc", "epoch", "epochs", "loss",
        "model_version", "items_indexed"}."""
        st = TrainStatus(struct_size=ctypes.sizeof(TrainStatus))
        check(lib.knytt_engine_train_status(self.handle, ctypes.byref(st)))
        return {"running": bool(st.running), "last_rc": st.last_rc,
                "epoch": st.progress.epoch, "epochs": st.progress.epochs,
                "loss": st.progress.loss,
                "model_version": st.model_version,
                "items_indexed": st.items_indexed}
