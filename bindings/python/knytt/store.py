"""knytt.Store (knytt_store): catalog, users, interactions, favorites,
search log, embeddings, models, tenants and keys in SQLite or PostgreSQL.

Items and interactions are plain dicts here.  An item's external id is
"id" (as in the import files) and its internal id "item_id".
"""

import ctypes
import json
import os

from . import _arrays as A
from ._lib import (lib, Item, Interaction, ITEM_FN, INTERACTION_FN,
                   EMBEDDING_FN, REJECT_FN, KEY_LEN)
from .errors import check, error, cstr, cpath, EINVAL, ENOTFOUND

RECORDS = {"items": 1, "users": 2, "interactions": 3}
FORMATS = {"csv": 1, "jsonl": 2, "movielens": 3}
OWNERS = {"item": 1, "user": 2}
SCOPES = {"secret": 1, "public": 2}
_SCOPE_NAMES = {v: k for k, v in SCOPES.items()}


def _b(s, what):
    """str -> UTF-8 bytes for the const char * argument @what (None
    stays NULL); a NUL inside is refused (errors.cstr)."""
    return cstr(s, what)


def _s(b):
    return None if b is None else b.decode("utf-8", "replace")


def _attrs(a):
    if a is None or isinstance(a, (str, bytes)):
        return _b(a, "attributes")
    return json.dumps(a).encode("utf-8")


def item_struct(d):
    """A knytt_item from a dict (the dict's strings stay referenced by
    the struct's fields as long as the struct lives)."""
    if not isinstance(d, dict):
        raise TypeError("an item is a dict, got %s" % type(d).__name__)
    unknown = set(d) - {"id", "ext_id", "title", "description", "category",
                        "price", "currency", "in_stock", "quality",
                        "image_url", "attributes", "item_id", "created_ms",
                        "updated_ms", "deleted"}
    if unknown:
        raise EINVAL("unknown item field(s): %s" % ", ".join(sorted(unknown)))
    it = Item()
    it.struct_size = ctypes.sizeof(Item)
    it.ext_id = _b(d.get("id", d.get("ext_id")), "id")
    it.title = _b(d.get("title"), "title")
    it.description = _b(d.get("description"), "description")
    it.category = _b(d.get("category"), "category")
    it.price = float(d.get("price", 0.0))
    it.currency = _b(d.get("currency"), "currency")
    it.in_stock = 1 if d.get("in_stock", True) else 0
    it.quality = float(d.get("quality", 0.0))
    it.image_url = _b(d.get("image_url"), "image_url")
    it.attributes = _attrs(d.get("attributes"))
    return it


def item_dict(it):
    attrs = _s(it.attributes)
    if attrs is not None:
        try:
            attrs = json.loads(attrs)
        except ValueError:
            pass
    return {"id": _s(it.ext_id), "item_id": it.id, "title": _s(it.title),
            "description": _s(it.description), "category": _s(it.category),
            "price": it.price, "currency": _s(it.currency),
            "in_stock": bool(it.in_stock), "quality": it.quality,
            "image_url": _s(it.image_url), "attributes": attrs,
            "created_ms": it.created_ms, "updated_ms": it.updated_ms,
            "deleted": bool(it.deleted)}


def interaction_dict(ix):
    return {"id": ix.id, "user": _s(ix.user), "item": _s(ix.item),
            "user_id": ix.user_id, "item_id": ix.item_id,
            "type": _s(ix.type), "weight": ix.weight,
            "value": ix.value if ix.has_value else None,
            "ts_ms": ix.ts_ms, "event_id": _s(ix.event_id)}


class _Collect:
    """A C callback that appends converted records to a list and keeps
    the first Python exception, to be raised after the C call."""

    def __init__(self, convert):
        self.rows, self.exc, self.convert = [], None, convert

    def __call__(self, rec, ctx):
        try:
            self.rows.append(self.convert(rec.contents))
            return 0
        except BaseException as exc:
            self.exc = exc
            return 1

    def done(self, rc):
        if self.exc is not None:
            raise self.exc
        check(rc)
        return self.rows


def _take_str(p):
    """A library-allocated C string -> str, freeing it."""
    if not p.value:
        return None
    try:
        return ctypes.string_at(p.value).decode("utf-8", "replace")
    finally:
        lib.knytt_free(p.value)


class Store:
    """A store connection: ``Store("sqlite:shop.db", tenant="default")``.

    The tenant is created when absent and selected; pass tenant=None to
    select one later with use_tenant().  One handle is one connection:
    use it from one thread at a time.
    """

    def __init__(self, uri="sqlite::memory:", tenant="default", _borrow=None,
                 _owner=None):
        self._owned = _borrow is None
        self._owner = _owner   # keeps a borrowing engine alive
        if _borrow is not None:
            self._h = _borrow
            return
        h = ctypes.c_void_p()
        check(lib.knytt_store_open(_b(uri, "uri"), ctypes.byref(h)))
        self._h = h.value
        if tenant is not None:
            try:
                self.use_tenant(self.tenant_ensure(tenant))
            except BaseException:
                self.close()
                raise

    def close(self):
        """Closes the connection (a store borrowed from an Engine is only
        detached).  Idempotent."""
        h, self._h = getattr(self, "_h", None), None
        if h and self._owned:
            lib.knytt_store_close(h)
        self._owner = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if not self._h or (self._owner is not None and not self._owner._h):
            raise error(-9, "store is closed")
        return self._h

    @property
    def backend(self):
        return _s(lib.knytt_store_backend(self.handle))

    @property
    def schema_version(self):
        return check(lib.knytt_store_schema_version(self.handle))

    def set_batch_size(self, rows):
        check(lib.knytt_store_set_batch_size(self.handle, int(rows)))

    # -- tenants and keys ---------------------------------------------------
    def tenant_create(self, name):
        tid = ctypes.c_uint64()
        check(lib.knytt_store_tenant_create(self.handle, _b(name, "name"),
                                            ctypes.byref(tid)))
        return tid.value

    def tenant_find(self, name):
        tid = ctypes.c_uint64()
        check(lib.knytt_store_tenant_find(self.handle, _b(name, "name"),
                                          ctypes.byref(tid)))
        return tid.value

    def tenant_ensure(self, name):
        """The id of tenant @name, created if absent."""
        try:
            return self.tenant_find(name)
        except ENOTFOUND:
            return self.tenant_create(name)

    def use_tenant(self, tenant):
        """Selects a tenant by id or name."""
        if isinstance(tenant, str):
            tenant = self.tenant_find(tenant)
        check(lib.knytt_store_use_tenant(self.handle, int(tenant)))

    @property
    def tenant(self):
        return lib.knytt_store_tenant(self.handle)

    def key_create(self, scope="secret"):
        buf = ctypes.create_string_buffer(KEY_LEN + 1)
        check(lib.knytt_store_key_create(self.handle, SCOPES[scope], buf))
        return buf.value.decode()

    def key_lookup(self, key):
        """(tenant id, "secret" | "public") of @key; EAUTH if unknown."""
        tid, scope = ctypes.c_uint64(), ctypes.c_int()
        check(lib.knytt_store_key_lookup(self.handle, _b(key, "key"),
                                         ctypes.byref(tid),
                                         ctypes.byref(scope)))
        return tid.value, _SCOPE_NAMES.get(scope.value)

    def key_revoke(self, key):
        check(lib.knytt_store_key_revoke(self.handle, _b(key, "key")))

    # -- items --------------------------------------------------------------
    def item_upsert(self, item=None, **fields):
        """Inserts or updates an item (a dict or keyword fields; "id" is
        the external id).  Returns the internal id."""
        d = dict(item or {}, **fields)
        it = item_struct(d)
        iid = ctypes.c_uint64()
        check(lib.knytt_store_item_upsert(self.handle, ctypes.byref(it),
                                          ctypes.byref(iid)))
        return iid.value

    def _item_out(self, rc, p):
        check(rc)
        try:
            return item_dict(p.contents)
        finally:
            lib.knytt_free(ctypes.cast(p, ctypes.c_void_p))

    def item_get(self, ext_id):
        p = ctypes.POINTER(Item)()
        return self._item_out(lib.knytt_store_item_get(
            self.handle, _b(ext_id, "ext_id"), ctypes.byref(p)), p)

    def item_get_id(self, item_id):
        p = ctypes.POINTER(Item)()
        return self._item_out(lib.knytt_store_item_get_id(
            self.handle, int(item_id), ctypes.byref(p)), p)

    def item_delete(self, ext_id):
        check(lib.knytt_store_item_delete(self.handle, _b(ext_id, "ext_id")))

    def items_changed(self, since_ms=0):
        """Items (deleted ones included) changed at or after @since_ms."""
        col = _Collect(item_dict)
        return col.done(lib.knytt_store_items_changed(
            self.handle, int(since_ms), ITEM_FN(col), None))

    def item_count(self):
        return check(lib.knytt_store_item_count(self.handle))

    def search(self, query, k=10, category=None, price_min=None,
               price_max=None, in_stock_only=False):
        """Keyword search: [(item_id, score)], best first."""
        iptr, ids = A.out_u64(k)
        scores = (ctypes.c_double * k)()
        nan = float("nan")
        n = check(lib.knytt_store_search(
            self.handle, _b(query, "query"), _b(category, "category"),
            nan if price_min is None else float(price_min),
            nan if price_max is None else float(price_max),
            1 if in_stock_only else 0, iptr, scores, k))
        return [(int(ids[i]), scores[i]) for i in range(n)]

    # -- users and interactions -------------------------------------------------
    def user_upsert(self, ext_id, attributes=None):
        uid = ctypes.c_uint64()
        check(lib.knytt_store_user_upsert(self.handle, _b(ext_id, "ext_id"),
                                          _attrs(attributes),
                                          ctypes.byref(uid)))
        return uid.value

    def user_get(self, ext_id):
        """{"id", "user_id", "attributes", "created_ms"}."""
        uid, attrs, created = (ctypes.c_uint64(), ctypes.c_void_p(),
                               ctypes.c_int64())
        check(lib.knytt_store_user_get(self.handle, _b(ext_id, "ext_id"),
                                       ctypes.byref(uid),
                                       ctypes.byref(attrs),
                                       ctypes.byref(created)))
        a = _take_str(attrs)
        return {"id": ext_id, "user_id": uid.value,
                "attributes": json.loads(a) if a else None,
                "created_ms": created.value}

    def user_count(self):
        return check(lib.knytt_store_user_count(self.handle))

    def interaction_add(self, user, item, type="view", weight=0.0,
                        value=None, ts_ms=0, event_id=None):
        """Appends an interaction; False if @event_id was seen before."""
        ix = Interaction()
        ix.struct_size = ctypes.sizeof(Interaction)
        ix.user, ix.item, ix.type = _b(user, "user"), _b(item, "item"), _b(type, "type")
        ix.weight = float(weight)
        ix.has_value = value is not None
        ix.value = float(value) if value is not None else 0.0
        ix.ts_ms = int(ts_ms)
        ix.event_id = _b(event_id, "event_id")
        return check(lib.knytt_store_interaction_add(
            self.handle, ctypes.byref(ix))) == 1

    def _interactions(self, fn, *args):
        col = _Collect(interaction_dict)
        return col.done(fn(self.handle, *args, INTERACTION_FN(col), None))

    def user_recent(self, user, n=50):
        return self._interactions(lib.knytt_store_user_recent, _b(user, "user"), n)

    def item_recent(self, item, n=50):
        return self._interactions(lib.knytt_store_item_recent, _b(item, "item"), n)

    def interactions_since(self, since_ms=0):
        return self._interactions(lib.knytt_store_interactions_since,
                                  int(since_ms))

    def interaction_count(self):
        return check(lib.knytt_store_interaction_count(self.handle))

    def item_counts(self, from_ms, to_ms, type=None, cap=100):
        """[(item_id, count)], most counted first."""
        ids = (ctypes.c_uint64 * cap)()
        counts = (ctypes.c_uint64 * cap)()
        n = check(lib.knytt_store_item_counts(
            self.handle, int(from_ms), int(to_ms), _b(type, "type"),
            ctypes.addressof(ids), ctypes.addressof(counts), cap))
        return [(ids[i], counts[i]) for i in range(n)]

    # -- favorites and search log -------------------------------------------
    def favorite_set(self, user, item):
        check(lib.knytt_store_favorite_set(self.handle, _b(user, "user"), _b(item, "item")))

    def favorite_unset(self, user, item):
        check(lib.knytt_store_favorite_unset(self.handle, _b(user, "user"),
                                             _b(item, "item")))

    def favorite_list(self, user, cap=1000):
        """Internal ids of @user's favorites, newest first."""
        ids = (ctypes.c_uint64 * cap)()
        n = check(lib.knytt_store_favorite_list(
            self.handle, _b(user, "user"), ctypes.addressof(ids), cap))
        return list(ids[:n])

    def search_log(self, query, user=None, result_count=0, ts_ms=0):
        lid = ctypes.c_uint64()
        check(lib.knytt_store_search_log(self.handle, _b(query, "query"), _b(user, "user"),
                                         int(result_count), int(ts_ms),
                                         ctypes.byref(lid)))
        return lid.value

    def search_click(self, log_id, item):
        check(lib.knytt_store_search_click(self.handle, int(log_id),
                                           _b(item, "item")))

    def search_log_get(self, log_id):
        """{"query", "result_count", "clicked_item"} of a log entry."""
        q, n, clicked = ctypes.c_void_p(), ctypes.c_int(), ctypes.c_uint64()
        check(lib.knytt_store_search_log_get(self.handle, int(log_id),
                                             ctypes.byref(q),
                                             ctypes.byref(n),
                                             ctypes.byref(clicked)))
        return {"query": _take_str(q), "result_count": n.value,
                "clicked_item": clicked.value}

    # -- embeddings and models -----------------------------------------------
    def embedding_put(self, owner, id, version, vector):
        v = A.vectors(vector, "vector", 1)
        check(lib.knytt_store_embedding_put(self.handle, OWNERS[owner],
                                            int(id), _b(version, "version"), v.ptr,
                                            v.dim))

    def embedding_get(self, owner, id, version, cap=4096):
        ptr, out = A.out_f32(cap)
        dim = check(lib.knytt_store_embedding_get(
            self.handle, OWNERS[owner], int(id), _b(version, "version"), ptr, cap))
        if dim > cap:
            return self.embedding_get(owner, id, version, dim)
        return A.head(out, dim)

    def embeddings(self, owner, version):
        """{id: vector} of every embedding of @owner kind and @version."""
        got, failure = {}, []

        def each(eid, vec, dim, ctx):
            try:
                got[eid] = ([vec[i] for i in range(dim)] if A.np is None else
                            A.np.ctypeslib.as_array(vec, (dim,)).copy())
                return 0
            except BaseException as exc:
                failure.append(exc)
                return 1
        rc = lib.knytt_store_embeddings_each(self.handle, OWNERS[owner],
                                             _b(version, "version"), EMBEDDING_FN(each),
                                             None)
        if failure:
            raise failure[0]
        check(rc)
        return got

    def model_put(self, name, blob, metadata=None):
        """Stores @blob (bytes) as a new version of model @name."""
        ver = ctypes.c_int64()
        blob = bytes(blob)
        check(lib.knytt_store_model_put(self.handle, _b(name, "name"), blob,
                                        len(blob), _attrs(metadata),
                                        ctypes.byref(ver)))
        return ver.value

    def model_get(self, name, version=0):
        """{"blob", "metadata", "version", "created_ms"}."""
        blob, size, meta = ctypes.c_void_p(), ctypes.c_size_t(), \
            ctypes.c_void_p()
        ver, created = ctypes.c_int64(), ctypes.c_int64()
        check(lib.knytt_store_model_get(self.handle, _b(name, "name"), int(version),
                                        ctypes.byref(blob),
                                        ctypes.byref(size),
                                        ctypes.byref(meta), ctypes.byref(ver),
                                        ctypes.byref(created)))
        try:
            data = ctypes.string_at(blob.value, size.value) if blob.value \
                else b""
        finally:
            lib.knytt_free(blob.value)
        m = _take_str(meta)
        return {"blob": data, "metadata": json.loads(m) if m else None,
                "version": ver.value, "created_ms": created.value}

    # -- bulk import ------------------------------------------------------------
    def import_file(self, path, kind, format="csv"):
        """Imports a CSV / JSON Lines / MovieLens file of @kind ("items",
        "users", "interactions").  Returns (accepted rows, rejects), each
        reject a (line, field, reason) tuple.  The GIL is released while
        the library reads and writes."""
        rejects = []

        def on_reject(line, field, reason, ctx):
            rejects.append((line, _s(field), _s(reason)))
        try:
            k, f = RECORDS[kind], FORMATS[format]
        except KeyError as exc:
            raise EINVAL("unknown record kind or format: %s" % exc) from None
        n = check(lib.knytt_store_import(self.handle, cpath(path), k, f,
                                         REJECT_FN(on_reject), None))
        return n, rejects
