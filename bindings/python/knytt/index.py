"""knytt.Index (knytt_index), knytt.IdSet, exact_knn and distance."""

import ctypes

from . import _arrays as A
from ._lib import lib, FILTER_FN
from .errors import check, error, cpath, EINVAL

METRICS = {"l2": 1, "ip": 2, "cosine": 3}
KINDS = {"hnsw": 1, "flat": 2}
QUANTS = {"none": 0, "int8": 1, "int8_only": 2, "f16": 3}
NO_LABEL = (1 << 64) - 1

_search = lib.knytt_index_search
_np = A.np


def _choice(table, value, what):
    try:
        return table[value.lower() if isinstance(value, str) else value]
    except (KeyError, AttributeError):
        raise EINVAL("%s must be one of %s, got %r"
                     % (what, ", ".join(sorted(table)), value)) from None


def _check_dim(have, want, what):
    if have != want:
        raise EINVAL("%s has %d dimensions, index has %d"
                     % (what, have, want))


class IdSet:
    """A set of allowed labels as the bitset knytt_index_search_bitset
    reads.  Build it once and pass it as ``filter=`` to many searches;
    a plain set or list works too but is converted on every call."""

    def __init__(self, ids):
        ids = [A._label(i, "filter ids") for i in ids]
        self.nbits = (max(ids) + 1) if ids else 0
        words = (self.nbits + 63) // 64 or 1
        if A.np is not None:
            bits = _np.zeros(words, _np.uint64)
            arr = _np.array(ids, dtype=_np.uint64)
            _np.bitwise_or.at(bits, arr >> _np.uint64(6),
                              _np.left_shift(_np.uint64(1),
                                             arr & _np.uint64(63)))
            self._bits, self._ptr = bits, bits.ctypes.data
        else:
            bits = (ctypes.c_uint64 * words)()
            for i in ids:
                bits[i >> 6] |= 1 << (i & 63)
            self._bits, self._ptr = bits, ctypes.addressof(bits)
        self._len = len(set(ids))

    def __len__(self):
        return self._len

    def __contains__(self, label):
        if label < 0 or label >= self.nbits:
            return False
        return bool(int(self._bits[label >> 6]) >> (label & 63) & 1)


class Index:
    """A vector index over uint64 labels (HNSW, or flat for exact search).

    ``Index(dim, metric="l2"|"ip"|"cosine", kind="hnsw"|"flat", m=16,
    ef_construction=200, ef_search=64, quant="none"|"int8"|"int8_only"|"f16",
    seed=42)``; 0 or None keeps the library's default.  ``Index.load(path)``
    reads a saved index.  Searches may run from many threads at once
    (the GIL is released inside the library); close() must not race
    with them.
    """

    def __init__(self, dim, metric="l2", kind="hnsw", m=0,
                 ef_construction=0, ef_search=0, quant="none", seed=None,
                 _load=None):
        h = ctypes.c_void_p()
        check(lib.knytt_index_create(ctypes.byref(h)))
        self._h = h.value
        try:
            if _load is not None:
                check(lib.knytt_index_load(self._h, _path(_load)))
            else:
                self._configure(metric, kind, m, ef_construction, ef_search,
                                quant, seed)
                check(lib.knytt_index_open(self._h, int(dim)))
        except BaseException:
            self.close()
            raise
        self._dim = lib.knytt_index_dim(self._h)

    def _configure(self, metric, kind, m, efc, ef, quant, seed):
        h = self._h
        check(lib.knytt_index_set_metric(h, _choice(METRICS, metric,
                                                     "metric")))
        check(lib.knytt_index_set_kind(h, _choice(KINDS, kind, "kind")))
        check(lib.knytt_index_set_quant(h, _choice(QUANTS, quant, "quant")))
        check(lib.knytt_index_set_m(h, int(m or 0)))
        check(lib.knytt_index_set_ef_construction(h, int(efc or 0)))
        check(lib.knytt_index_set_ef_search(h, int(ef or 0)))
        if seed is not None:
            check(lib.knytt_index_set_seed(h, int(seed)))

    @classmethod
    def load(cls, path):
        """An index read from a file written by save()."""
        return cls(0, _load=path)

    # -- life cycle -------------------------------------------------------
    def close(self):
        """Frees the index.  Idempotent."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.knytt_index_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if not self._h:
            raise error(-9, "index is closed")
        return self._h

    # -- properties ---------------------------------------------------------
    @property
    def dim(self):
        return self._dim

    def __len__(self):
        return lib.knytt_index_count(self.handle)

    def __contains__(self, label):
        return lib.knytt_index_contains(self.handle, int(label)) == 1

    def memory(self):
        """Bytes the index holds (vectors, links, labels, maps)."""
        return lib.knytt_index_memory(self.handle)

    def vector_memory(self):
        """Bytes the vectors alone take."""
        return lib.knytt_index_vector_memory(self.handle)

    # -- writes -----------------------------------------------------------
    def train_quant(self, vectors):
        """Learns the int8 value ranges from sample vectors (before the
        first add of an int8 index)."""
        v = A.vectors(vectors, "vectors")
        _check_dim(v.dim, self._dim, "vectors")
        check(lib.knytt_index_train_quant(self.handle, v.rows, v.ptr,
                                          v.dim))

    def add(self, label, vector):
        """Adds one vector; EEXIST if the label is present."""
        v = A.vectors(vector, "vector", 1)
        check(lib.knytt_index_add(self.handle, A._label(label, "label"),
                                  v.ptr, v.dim))

    def upsert(self, label, vector):
        """Adds the label or replaces its vector."""
        v = A.vectors(vector, "vector", 1)
        check(lib.knytt_index_upsert(self.handle, A._label(label, "label"),
                                     v.ptr, v.dim))

    def add_batch(self, labels, vectors, threads=0):
        """Adds rows of @vectors under @labels on @threads threads (0 =
        every core); all or nothing."""
        v = A.vectors(vectors, "vectors")
        lp, keep = A.labels_in(labels, v.rows)
        check(lib.knytt_index_add_batch(self.handle, v.rows, lp, v.ptr,
                                        v.dim, int(threads)))
        del keep

    def remove(self, label):
        check(lib.knytt_index_remove(self.handle, int(label)))

    def get(self, label):
        """The stored vector of @label (ENOTFOUND if absent)."""
        ptr, out = A.out_f32(self._dim)
        check(lib.knytt_index_get(self.handle, int(label), ptr, self._dim))
        return out if A.np is not None else list(out)

    def save(self, path):
        check(lib.knytt_index_save(self.handle, _path(path)))

    # -- reads --------------------------------------------------------------
    def search(self, query, k=10, ef=0, filter=None):
        """The k nearest labels to @query: (labels, distances), nearest
        first, trimmed to the results found.  @filter is a callable
        label -> bool, an IdSet, or any iterable of allowed labels."""
        # The common case -- a 1-d float32 numpy query, numpy results --
        # takes the shortest path: the query's buffer by reference and
        # results written by C into ctypes arrays that numpy then wraps
        # (np.frombuffer), a few hundred nanoseconds cheaper per call
        # than numpy's .ctypes attributes (see benchmarks/bindings).
        h = self._h
        qarg = None
        if type(query) is _ndarray and query.dtype is _f32 and \
                query.ndim == 1:
            try:   # refused for non-contiguous, read-only, empty arrays
                qarg, qdim, keep = _byref(_char_view(query)), \
                    query.shape[0], query
            except (TypeError, ValueError, BufferError):
                pass
        if qarg is None:   # the general path, with its clear errors
            v = A.vectors(query, "query", 1)
            qarg, qdim, keep = v.ptr, v.dim, v.keep
        if not h:
            raise error(-9, "index is closed")
        if type(k) is not int:
            k = int(k)
        if k <= 0 or ef < 0:
            raise EINVAL("k must be at least 1 and ef at least 0, got "
                         "k %d, ef %d" % (k, ef))
        types = _OUT_TYPES.get(k)
        if types is None:
            types = _OUT_TYPES[k] = (ctypes.c_uint64 * k, ctypes.c_float * k)
        labels, dists = types[0](), types[1]()
        if filter is None:
            n = _search(h, qarg, qdim, k, ef, labels, dists)
        else:
            n = self._search_filtered(qarg, qdim, k, ef, filter, labels,
                                      dists)
        if n < 0:
            raise error(n)
        del keep
        if A.np is None:
            return list(labels[:n]), list(dists[:n])
        labels, dists = _frombuffer(labels, _u64), _frombuffer(dists, _f32)
        if n < k:
            return labels[:n], dists[:n]
        return labels, dists

    def _search_filtered(self, qptr, qdim, k, ef, filt, lptr, dptr):
        if callable(filt):
            failure = []

            def accept(label, ctx):
                try:
                    return 1 if filt(label) else 0
                except BaseException as exc:  # reported after the call
                    if not failure:
                        failure.append(exc)
                    return 0
            fn = FILTER_FN(accept)
            n = lib.knytt_index_search_filter(self._h, qptr, qdim, k, ef, fn,
                                              None, lptr, dptr)
            if failure:
                raise failure[0]
            return n
        if not isinstance(filt, IdSet):
            filt = IdSet(filt)
        return lib.knytt_index_search_bitset(self._h, qptr, qdim, k, ef,
                                             filt._ptr, filt.nbits, lptr,
                                             dptr)

    def search_batch(self, queries, k=10, ef=0, threads=0):
        """Searches every row of @queries on @threads threads (0 = every
        core): (labels, distances) of shape (nq, k); missing results are
        2**64-1 / inf."""
        v = A.vectors(queries, "queries")
        k = int(k)
        if k <= 0 or ef < 0 or threads < 0:
            raise EINVAL("k must be at least 1, ef and threads at least 0")
        lptr, labels = A.out_u64(v.rows * k)
        dptr, dists = A.out_f32(v.rows * k)
        check(lib.knytt_index_search_batch(self.handle, v.rows, v.ptr, v.dim,
                                           k, int(ef), int(threads), lptr,
                                           dptr))
        return A.shaped(labels, v.rows, k), A.shaped(dists, v.rows, k)


_OUT_TYPES = {}   # k -> (c_uint64 * k, c_float * k)
_byref = ctypes.byref
_char_view = ctypes.c_char.from_buffer
if A.np is not None:
    _ndarray, _f32 = A.np.ndarray, A.np.dtype(A.np.float32)
    _u64, _frombuffer = A.np.dtype(A.np.uint64), A.np.frombuffer
else:
    _ndarray = _f32 = _u64 = _frombuffer = None


def _path(path):
    import os
    return cpath(path)


def exact_knn(base, queries, k=10, metric="l2"):
    """Exact k nearest rows of @base for each row of @queries (OpenBLAS):
    (ids, distances) of shape (nq, k); ids are row numbers of @base."""
    b = A.vectors(base, "base")
    q = A.vectors(queries, "queries")
    if b.dim != q.dim:
        raise EINVAL("queries have %d dimensions, base has %d"
                     % (q.dim, b.dim))
    k = int(k)
    if k <= 0:
        raise EINVAL("k must be at least 1, got %d" % k)
    iptr, ids = A.out_u64(q.rows * k)
    dptr, dists = A.out_f32(q.rows * k)
    check(lib.knytt_exact_knn(_choice(METRICS, metric, "metric"), b.dim,
                              b.ptr, b.rows, q.ptr, q.rows, k, iptr, dptr))
    return A.shaped(ids, q.rows, k), A.shaped(dists, q.rows, k)


def distance(a, b, metric="l2"):
    """The distance between two vectors (the library's SIMD kernel)."""
    va = A.vectors(a, "a", 1)
    vb = A.vectors(b, "b", 1)
    if va.dim != vb.dim:
        raise EINVAL("a has %d dimensions, b has %d" % (va.dim, vb.dim))
    return lib.knytt_distance(_choice(METRICS, metric, "metric"), va.ptr,
                              vb.ptr, va.dim)
