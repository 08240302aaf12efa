"""knytt.ALS (implicit ALS over a knytt_matrix) and knytt.TwoTower."""

import ctypes
import os

from . import _arrays as A
from ._lib import lib, TTItem, PROGRESS_FN
from .engine import Progress
from .errors import check, error, cpath, EINVAL
from .store import _b

EVENTS = {"view": 0, "click": 1, "add_to_cart": 2, "purchase": 3,
          "rating": 4}


def _seq(x, n, what):
    if x is None:
        return None
    x = list(x)
    if len(x) != n:
        raise EINVAL("%s has %d entries, users has %d" % (what, len(x), n))
    return x


class Matrix:
    """The interaction matrix (knytt_matrix, users x items, CSR) that ALS
    trains on.  ``Matrix(users, items, types=None, values=None,
    times=None, nusers=0, nitems=0, weights=None, half_life=0, now=0)``:
    users/items are dense 0-based ids, types event names or numbers
    (default "view"), values the multipliers (default 1)."""

    def __init__(self, users, items, types=None, values=None, times=None,
                 nusers=0, nitems=0, weights=None, half_life=0, now=0):
        h = ctypes.c_void_p()
        check(lib.knytt_matrix_create(ctypes.byref(h)))
        self._h = h.value
        try:
            self._fill(users, items, types, values, times, weights,
                       half_life, now)
            check(lib.knytt_matrix_build(self._h, int(nusers), int(nitems)))
        except BaseException:
            self.close()
            raise

    def _fill(self, users, items, types, values, times, weights, half_life,
              now):
        users, items = list(users), list(items)
        n = len(users)
        if len(items) != n:
            raise EINVAL("items has %d entries, users has %d"
                         % (len(items), n))
        types = _seq(types, n, "types")
        values = _seq(values, n, "values")
        times = _seq(times, n, "times")
        for name, w in (weights or {}).items():
            check(lib.knytt_matrix_set_weight(self._h, EVENTS.get(name, name),
                                              float(w)))
        if half_life:
            check(lib.knytt_matrix_set_decay(self._h, float(half_life),
                                             int(now)))
        add, h = lib.knytt_matrix_add, self._h
        for j in range(n):
            t = types[j] if types is not None else 0
            if isinstance(t, str):
                if t not in EVENTS:
                    raise EINVAL("interaction %d: unknown type %r" % (j, t))
                t = EVENTS[t]
            rc = add(h, int(users[j]), int(items[j]), t,
                     float(values[j]) if values is not None else 1.0,
                     int(times[j]) if times is not None else 0)
            if rc < 0:
                raise error(rc)

    def close(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.knytt_matrix_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def shape(self):
        return (lib.knytt_matrix_users(self._h),
                lib.knytt_matrix_items(self._h))

    @property
    def nnz(self):
        return lib.knytt_matrix_nnz(self._h)


class _Model:
    _close = None

    def close(self):
        """Frees the model.  Idempotent."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            type(self)._close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if not self._h:
            raise error(-9, "model is closed")
        return self._h

    def _bytes(self, fn):
        buf, size = ctypes.c_void_p(), ctypes.c_size_t()
        check(fn(self.handle, ctypes.byref(buf), ctypes.byref(size)))
        try:
            return ctypes.string_at(buf.value, size.value)
        finally:
            lib.knytt_free(buf.value)

    def _matrix(self, rows, cols, fn):
        ptr, out = A.out_f32(max(rows * cols, 1))
        check(fn(ptr))   # also for 0 rows: an untrained model is ESTATE
        out = out[:rows * cols]
        return A.shaped(out, rows, cols)


class ALS(_Model):
    """Implicit ALS (Hu, Koren & Volinsky 2008).

    ``ALS(factors=64, reg=0.1, alpha=1, iterations=15, reg_exponent=0,
    seed=42, threads=0, solver="cg"|"cholesky", cg_steps=3)``, then
    ``fit(Matrix | (users, items, ...))`` or ``ALS.load(path)``.
    """

    _close = staticmethod(lib.knytt_als_close)

    def __init__(self, factors=64, reg=None, alpha=None, iterations=None,
                 reg_exponent=None, seed=None, threads=None, solver=None,
                 cg_steps=0):
        h = ctypes.c_void_p()
        check(lib.knytt_als_create(ctypes.byref(h)))
        self._h = h.value
        try:
            self._configure(factors, reg, alpha, iterations, reg_exponent,
                            seed, threads, solver, cg_steps)
        except BaseException:
            self.close()
            raise

    def _configure(self, factors, reg, alpha, iterations, nu, seed, threads,
                   solver, cg_steps):
        h = self._h
        check(lib.knytt_als_set_factors(h, int(factors)))
        for fn, v in ((lib.knytt_als_set_reg, reg),
                      (lib.knytt_als_set_alpha, alpha),
                      (lib.knytt_als_set_reg_exponent, nu)):
            if v is not None:
                check(fn(h, float(v)))
        for fn, v in ((lib.knytt_als_set_iterations, iterations),
                      (lib.knytt_als_set_seed, seed),
                      (lib.knytt_als_set_threads, threads)):
            if v is not None:
                check(fn(h, int(v)))
        if solver is not None or cg_steps:
            kinds = {"cg": 1, "cholesky": 2}
            if (solver or "cg") not in kinds:
                raise EINVAL("solver must be cg or cholesky, got %r"
                             % (solver,))
            check(lib.knytt_als_set_solver(h, kinds[solver or "cg"],
                                           int(cg_steps)))

    @classmethod
    def load(cls, path_or_bytes):
        """A model from a file written by save() or bytes of to_bytes()."""
        m = cls()
        try:
            if isinstance(path_or_bytes, (bytes, bytearray)):
                data = bytes(path_or_bytes)
                check(lib.knytt_als_load_buffer(m._h, data, len(data)))
            else:
                check(lib.knytt_als_load(m._h, cpath(path_or_bytes)))
        except BaseException:
            m.close()
            raise
        return m

    def fit(self, matrix, *args, progress=None, **kw):
        """Trains on a Matrix, or on Matrix(*args, **kw) built here.
        @progress(ProgressInfo) after each epoch; True cancels.  The GIL
        is released while the library trains."""
        own = not isinstance(matrix, Matrix)
        m = Matrix(matrix, *args, **kw) if own else matrix
        p = Progress(progress)
        try:
            check(lib.knytt_als_set_progress(self.handle, p.c, None))
            p.finish(lib.knytt_als_train(self.handle, m._h))
        finally:
            lib.knytt_als_set_progress(self._h, PROGRESS_FN(), None)
            if own:
                m.close()
        return self

    @property
    def factors(self):
        return lib.knytt_als_factors(self.handle)

    @property
    def shape(self):
        """(users, items) of the trained model."""
        return lib.knytt_als_users(self.handle), \
            lib.knytt_als_items(self.handle)

    def user_factors(self):
        """All user factors, users x factors (numpy without a copy of the
        library's output, or a list of lists)."""
        n, f = lib.knytt_als_users(self.handle), self.factors
        return self._matrix(n, f, lambda p: lib.knytt_als_user_factors(
            self._h, 0, n, p))

    def item_factors(self):
        n, f = lib.knytt_als_items(self.handle), self.factors
        return self._matrix(n, f, lambda p: lib.knytt_als_item_factors(
            self._h, 0, n, p))

    def score(self, user, items=None):
        """Scores x_user . y_item of @items (all items when None)."""
        if items is None:
            n, iptr, keep = lib.knytt_als_items(self.handle), None, None
        else:
            keep = (ctypes.c_uint32 * len(items))(*[int(i) for i in items])
            n, iptr = len(items), ctypes.addressof(keep)
        ptr, out = A.out_f32(n)
        check(lib.knytt_als_score(self.handle, int(user), iptr, n, ptr))
        return A.head(out, n)

    def fold_in(self, items, weights, start=None):
        """A user vector from (item, weight) pairs by the epoch's own
        solve (start: the warm-start vector, zeros by default)."""
        n, f = len(items), self.factors
        if len(weights) != n:
            raise EINVAL("weights has %d entries, items has %d"
                         % (len(weights), n))
        it = (ctypes.c_uint32 * n)(*[int(i) for i in items])
        w = (ctypes.c_float * n)(*[float(x) for x in weights])
        ptr, out = A.out_f32(f)
        for i in range(f):
            out[i] = float(start[i]) if start is not None else 0.0
        check(lib.knytt_als_fold_in(self.handle, n, ctypes.addressof(it),
                                    ctypes.addressof(w), ptr))
        return out if A.np is not None else list(out)

    def save(self, path):
        check(lib.knytt_als_save(self.handle, cpath(path)))

    def to_bytes(self):
        return self._bytes(lib.knytt_als_save_buffer)


def _tt_items(features):
    """knytt_twotower_item array from dicts (title, description,
    category, price); returns (array, owners of the strings)."""
    arr = (TTItem * len(features))()
    for i, d in enumerate(features):
        _tt_item(arr[i], d or {})
    return arr


def _tt_item(t, d):
    t.title = _b(d.get("title"), "title")
    t.description = _b(d.get("description"), "description")
    t.category = _b(d.get("category"), "category")
    p = d.get("price")
    t.price = float("nan") if p is None else float(p)
    return t


class TwoTower(_Model):
    """The two-tower retrieval model.

    ``TwoTower(dim=64, epochs=10, batch=512, lr=0.01, temperature=0.05,
    seed=42, threads=0, buckets=2**18, history=20, id_dropout=0.25)``
    (None keeps the default), then ``fit(users, items, nusers, nitems,
    features=[{"title", "description", "category", "price"}, ...])`` or
    ``TwoTower.load(path)``.
    """

    _close = staticmethod(lib.knytt_twotower_close)
    _SETTERS = (("dim", "knytt_twotower_set_dim", int),
                ("epochs", "knytt_twotower_set_epochs", int),
                ("batch", "knytt_twotower_set_batch", int),
                ("lr", "knytt_twotower_set_lr", float),
                ("temperature", "knytt_twotower_set_temperature", float),
                ("seed", "knytt_twotower_set_seed", int),
                ("threads", "knytt_twotower_set_threads", int),
                ("buckets", "knytt_twotower_set_buckets", int),
                ("history", "knytt_twotower_set_history", int),
                ("id_dropout", "knytt_twotower_set_id_dropout", float))

    def __init__(self, **settings):
        unknown = set(settings) - {s[0] for s in self._SETTERS}
        if unknown:
            raise EINVAL("unknown TwoTower setting(s): %s"
                         % ", ".join(sorted(unknown)))
        h = ctypes.c_void_p()
        check(lib.knytt_twotower_create(ctypes.byref(h)))
        self._h = h.value
        try:
            for name, fn, conv in self._SETTERS:
                if settings.get(name) is not None:
                    check(getattr(lib, fn)(self._h, conv(settings[name])))
        except BaseException:
            self.close()
            raise

    @classmethod
    def load(cls, path_or_bytes):
        m = cls()
        try:
            if isinstance(path_or_bytes, (bytes, bytearray)):
                data = bytes(path_or_bytes)
                check(lib.knytt_twotower_load_buffer(m._h, data, len(data)))
            else:
                check(lib.knytt_twotower_load(m._h,
                                              cpath(path_or_bytes)))
        except BaseException:
            m.close()
            raise
        return m

    def fit(self, users, items, nusers=0, nitems=0, features=None,
            weights=None, times=None, progress=None):
        """Trains on interactions users[k] x items[k] (dense ids; nusers /
        nitems default to the largest id + 1).  @features: one dict per
        item id, or None.  The GIL is released while it trains."""
        users, items = list(users), list(items)
        n = len(users)
        if len(items) != n:
            raise EINVAL("items has %d entries, users has %d"
                         % (len(items), n))
        nusers = nusers or (max(users) + 1 if users else 0)
        nitems = nitems or (max(items) + 1 if items else 0)
        u = (ctypes.c_uint32 * n)(*users)
        it = (ctypes.c_uint32 * n)(*items)
        w = (ctypes.c_float * n)(*_seq(weights, n, "weights")) \
            if weights is not None else None
        t = (ctypes.c_int64 * n)(*_seq(times, n, "times")) \
            if times is not None else None
        feats = None
        if features is not None:
            if len(features) != nitems:
                raise EINVAL("features has %d entries for %d items"
                             % (len(features), nitems))
            feats = _tt_items(features)
        p = Progress(progress)
        addr = ctypes.addressof
        try:
            check(lib.knytt_twotower_set_progress(self.handle, p.c, None))
            p.finish(lib.knytt_twotower_train(
                self._h, nusers, nitems, feats and addr(feats), n, addr(u),
                addr(it), w and addr(w), t and addr(t)))
        finally:
            lib.knytt_twotower_set_progress(self._h, PROGRESS_FN(), None)
        return self

    @property
    def dim(self):
        return lib.knytt_twotower_dim(self.handle)

    @property
    def shape(self):
        return (lib.knytt_twotower_count_users(self.handle),
                lib.knytt_twotower_count_items(self.handle))

    def item_embeddings(self):
        n, d = lib.knytt_twotower_count_items(self.handle), self.dim
        return self._matrix(n, d, lambda p: lib.knytt_twotower_item_embeddings(
            self._h, p, n))

    def user_embeddings(self):
        n, d = lib.knytt_twotower_count_users(self.handle), self.dim
        return self._matrix(n, d, lambda p: lib.knytt_twotower_user_embeddings(
            self._h, p, n))

    def embed_item(self, features):
        """The item tower's vector for an item never seen (features only)."""
        t = _tt_item(TTItem(), features)
        ptr, out = A.out_f32(self.dim)
        check(lib.knytt_twotower_embed_item(self.handle, ctypes.byref(t),
                                            ptr))
        return out if A.np is not None else list(out)

    def embed_query(self, text):
        ptr, out = A.out_f32(self.dim)
        check(lib.knytt_twotower_embed_query(self.handle, _b(text, "text"), ptr))
        return out if A.np is not None else list(out)

    def embed_user(self, user=None, recent=()):
        """The user tower's vector (user None = no id embedding) from the
        recent items, most recent last."""
        recent = list(recent)
        r = (ctypes.c_uint32 * len(recent))(*recent)
        ptr, out = A.out_f32(self.dim)
        check(lib.knytt_twotower_embed_user(
            self.handle, 0xFFFFFFFF if user is None else int(user),
            ctypes.addressof(r), len(recent), ptr))
        return out if A.np is not None else list(out)

    def save(self, path):
        check(lib.knytt_twotower_save(self.handle, cpath(path)))

    def to_bytes(self):
        return self._bytes(lib.knytt_twotower_save_buffer)
