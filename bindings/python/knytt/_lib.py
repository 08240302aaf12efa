"""Loading libknytt.so and declaring the C functions the package calls.

Only include/knytt.h is bound: every prototype below is copied from it.
The library is a CDLL, so ctypes releases the GIL around each foreign
call: searches, training and imports run in parallel with other Python
threads.  Callbacks (filters, progress, rejects) take the GIL back while
they run.
"""

import ctypes
import ctypes.util
import os

_MAJOR = 1
_SONAME = "libknytt.so.%d" % _MAJOR

c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_u32 = ctypes.c_uint32
c_u64 = ctypes.c_uint64
c_i64 = ctypes.c_int64
c_size = ctypes.c_size_t
c_float = ctypes.c_float
c_double = ctypes.c_double
c_str = ctypes.c_char_p
c_ptr = ctypes.c_void_p
P = ctypes.POINTER

MAX_ID = 256
KEY_LEN = 70


def _candidates():
    """Where the library may be, most specific first."""
    env = os.environ.get("KNYTT_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    found = []
    # Bundled next to the package (a wheel that ships the library).
    for name in (_SONAME, "libknytt.so"):
        found.append(os.path.join(here, name))
    # A source checkout: bindings/python/knytt -> build/libknytt.so.
    found.append(os.path.join(here, "..", "..", "..", "build", _SONAME))
    # The installed soname, through the dynamic loader's own search.
    found.append(_SONAME)
    lib = ctypes.util.find_library("knytt")
    if lib:
        found.append(lib)
    return found


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            cdll = ctypes.CDLL(path)
        except OSError as exc:
            tried.append("%s (%s)" % (path, exc))
            continue
        # the structs below mirror knytt.h of this major version: a
        # library of another major lays them out differently
        major = cdll.knytt_version_number() // 1000000
        if major == _MAJOR:
            return cdll
        tried.append("%s (libknytt major %d, this package needs %d)"
                     % (path, major, _MAJOR))
    raise ImportError("knytt: cannot load libknytt; set KNYTT_LIBRARY to "
                      "the path of libknytt.so.  Tried: " + "; ".join(tried))


lib = _load()


class Filter(ctypes.Structure):
    # initialized by knytt_filter_init_size with ctypes.sizeof(Filter):
    # the library writes no more than this mirror holds
    _fields_ = [("struct_size", c_size), ("category_prefix", c_str),
                ("price_min", c_double), ("price_max", c_double),
                ("in_stock_only", c_int), ("min_quality", c_double),
                ("where", ctypes.c_void_p)]


class Result(ctypes.Structure):
    # an array of these is passed with out[0].struct_size =
    # ctypes.sizeof(Result): the stride the library writes at
    _fields_ = [("struct_size", c_size), ("item_id", c_u64),
                ("ext_id", ctypes.c_char * (MAX_ID + 1)),
                ("score", c_double), ("reason", c_int), ("because", c_u64)]


class RecOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size), ("mmr_lambda", c_double),
                ("exclude_seen", c_int)]


class Progress(ctypes.Structure):
    _fields_ = [("epoch", c_uint), ("epochs", c_uint), ("loss", c_double),
                ("elapsed", c_double), ("eta", c_double)]


class TrainStatus(ctypes.Structure):
    _fields_ = [("struct_size", c_size), ("running", c_int), ("last_rc", c_int),
                ("progress", Progress), ("model_version", c_i64),
                ("items_indexed", c_size)]


class ProfileCacheInfo(ctypes.Structure):
    _fields_ = [("struct_size", c_size), ("budget", c_u64), ("bytes", c_u64),
                ("profiles", c_u64), ("evictions", c_u64)]


class Item(ctypes.Structure):
    _fields_ = [("struct_size", c_size), ("id", c_u64), ("ext_id", c_str),
                ("title", c_str), ("description", c_str),
                ("category", c_str), ("price", c_double),
                ("currency", c_str), ("in_stock", c_int),
                ("quality", c_double), ("image_url", c_str),
                ("attributes", c_str), ("created_ms", c_i64),
                ("updated_ms", c_i64), ("deleted", c_int)]


class Interaction(ctypes.Structure):
    _fields_ = [("struct_size", c_size), ("id", c_u64), ("user", c_str),
                ("item", c_str), ("user_id", c_u64), ("item_id", c_u64),
                ("type", c_str), ("weight", c_double),
                ("has_value", c_int), ("value", c_double),
                ("ts_ms", c_i64), ("event_id", c_str)]


class TTItem(ctypes.Structure):
    _fields_ = [("title", c_str), ("description", c_str),
                ("category", c_str), ("price", c_double)]


FILTER_FN = ctypes.CFUNCTYPE(c_int, c_u64, c_ptr)
PROGRESS_FN = ctypes.CFUNCTYPE(c_int, c_ptr, P(Progress))
ITEM_FN = ctypes.CFUNCTYPE(c_int, P(Item), c_ptr)
INTERACTION_FN = ctypes.CFUNCTYPE(c_int, P(Interaction), c_ptr)
EMBEDDING_FN = ctypes.CFUNCTYPE(c_int, c_u64, P(c_float), c_u32, c_ptr)
REJECT_FN = ctypes.CFUNCTYPE(None, c_size, c_str, c_str, c_ptr)

# name: (restype, argtypes).  Pointers to arrays travel as c_void_p so
# that numpy buffers pass by address, without a copy or a conversion.
_PROTOS = {
    "knytt_version": (c_str, []),
    "knytt_version_number": (c_int, []),
    "knytt_errstr": (c_str, [c_int]),
    "knytt_errname": (c_str, [c_int]),
    "knytt_errmsg": (c_str, []),
    "knytt_errfield": (c_str, []),
    "knytt_free": (None, [c_ptr]),
    "knytt_simd_name": (c_str, []),
    "knytt_distance": (c_float, [c_int, c_ptr, c_ptr, c_size]),
    "knytt_exact_knn": (c_int, [c_int, c_size, c_ptr, c_size, c_ptr, c_size,
                                c_size, c_ptr, c_ptr]),
    # index
    "knytt_index_create": (c_int, [P(c_ptr)]),
    "knytt_index_set_kind": (c_int, [c_ptr, c_int]),
    "knytt_index_set_metric": (c_int, [c_ptr, c_int]),
    "knytt_index_set_m": (c_int, [c_ptr, c_uint]),
    "knytt_index_set_ef_construction": (c_int, [c_ptr, c_uint]),
    "knytt_index_set_ef_search": (c_int, [c_ptr, c_uint]),
    "knytt_index_set_quant": (c_int, [c_ptr, c_int]),
    "knytt_index_set_seed": (c_int, [c_ptr, c_u64]),
    "knytt_index_open": (c_int, [c_ptr, c_u32]),
    "knytt_index_close": (None, [c_ptr]),
    "knytt_index_train_quant": (c_int, [c_ptr, c_size, c_ptr, c_u32]),
    "knytt_index_add": (c_int, [c_ptr, c_u64, c_ptr, c_u32]),
    "knytt_index_upsert": (c_int, [c_ptr, c_u64, c_ptr, c_u32]),
    "knytt_index_add_batch": (c_int, [c_ptr, c_size, c_ptr, c_ptr, c_u32,
                                      c_uint]),
    "knytt_index_remove": (c_int, [c_ptr, c_u64]),
    "knytt_index_get": (c_int, [c_ptr, c_u64, c_ptr, c_u32]),
    "knytt_index_contains": (c_int, [c_ptr, c_u64]),
    "knytt_index_count": (c_size, [c_ptr]),
    "knytt_index_dim": (c_u32, [c_ptr]),
    "knytt_index_memory": (c_size, [c_ptr]),
    "knytt_index_vector_memory": (c_size, [c_ptr]),
    "knytt_index_search": (c_int, [c_ptr, c_ptr, c_u32, c_size, c_uint,
                                   c_ptr, c_ptr]),
    "knytt_index_search_filter": (c_int, [c_ptr, c_ptr, c_u32, c_size,
                                          c_uint, FILTER_FN, c_ptr, c_ptr,
                                          c_ptr]),
    "knytt_index_search_bitset": (c_int, [c_ptr, c_ptr, c_u32, c_size,
                                          c_uint, c_ptr, c_size, c_ptr,
                                          c_ptr]),
    "knytt_index_search_batch": (c_int, [c_ptr, c_size, c_ptr, c_u32,
                                         c_size, c_uint, c_uint, c_ptr,
                                         c_ptr]),
    "knytt_index_save": (c_int, [c_ptr, c_str]),
    "knytt_index_load": (c_int, [c_ptr, c_str]),
    # store
    "knytt_store_open": (c_int, [c_str, P(c_ptr)]),
    "knytt_store_close": (None, [c_ptr]),
    "knytt_store_backend": (c_str, [c_ptr]),
    "knytt_store_schema_version": (c_int, [c_ptr]),
    "knytt_store_set_batch_size": (c_int, [c_ptr, c_size]),
    "knytt_store_tenant_create": (c_int, [c_ptr, c_str, P(c_u64)]),
    "knytt_store_tenant_find": (c_int, [c_ptr, c_str, P(c_u64)]),
    "knytt_store_use_tenant": (c_int, [c_ptr, c_u64]),
    "knytt_store_tenant": (c_u64, [c_ptr]),
    "knytt_store_key_create": (c_int, [c_ptr, c_int, c_ptr]),
    "knytt_store_key_lookup": (c_int, [c_ptr, c_str, P(c_u64), P(c_int)]),
    "knytt_store_key_revoke": (c_int, [c_ptr, c_str]),
    "knytt_store_item_upsert": (c_int, [c_ptr, P(Item), P(c_u64)]),
    "knytt_store_item_get": (c_int, [c_ptr, c_str, P(P(Item))]),
    "knytt_store_item_get_id": (c_int, [c_ptr, c_u64, P(P(Item))]),
    "knytt_store_item_delete": (c_int, [c_ptr, c_str]),
    "knytt_store_items_changed": (c_int, [c_ptr, c_i64, ITEM_FN, c_ptr]),
    "knytt_store_item_count": (c_i64, [c_ptr]),
    "knytt_store_search": (c_int, [c_ptr, c_str, c_str, c_double, c_double,
                                   c_int, c_ptr, c_ptr, c_size]),
    "knytt_store_user_upsert": (c_int, [c_ptr, c_str, c_str, P(c_u64)]),
    "knytt_store_user_get": (c_int, [c_ptr, c_str, P(c_u64), P(c_ptr),
                                     P(c_i64)]),
    "knytt_store_user_count": (c_i64, [c_ptr]),
    "knytt_store_interaction_add": (c_int, [c_ptr, P(Interaction)]),
    "knytt_store_user_recent": (c_int, [c_ptr, c_str, c_size,
                                        INTERACTION_FN, c_ptr]),
    "knytt_store_item_recent": (c_int, [c_ptr, c_str, c_size,
                                        INTERACTION_FN, c_ptr]),
    "knytt_store_interactions_since": (c_int, [c_ptr, c_i64,
                                               INTERACTION_FN, c_ptr]),
    "knytt_store_interaction_count": (c_i64, [c_ptr]),
    "knytt_store_item_counts": (c_int, [c_ptr, c_i64, c_i64, c_str, c_ptr,
                                        c_ptr, c_size]),
    "knytt_store_favorite_set": (c_int, [c_ptr, c_str, c_str]),
    "knytt_store_favorite_unset": (c_int, [c_ptr, c_str, c_str]),
    "knytt_store_favorite_list": (c_int, [c_ptr, c_str, c_ptr, c_size]),
    "knytt_store_search_log": (c_int, [c_ptr, c_str, c_str, c_int, c_i64,
                                       P(c_u64)]),
    "knytt_store_search_click": (c_int, [c_ptr, c_u64, c_str]),
    "knytt_store_search_log_get": (c_int, [c_ptr, c_u64, P(c_ptr), P(c_int),
                                           P(c_u64)]),
    "knytt_store_embedding_put": (c_int, [c_ptr, c_int, c_u64, c_str, c_ptr,
                                          c_u32]),
    "knytt_store_embedding_get": (c_int, [c_ptr, c_int, c_u64, c_str, c_ptr,
                                          c_u32]),
    "knytt_store_embeddings_each": (c_int, [c_ptr, c_int, c_str,
                                            EMBEDDING_FN, c_ptr]),
    "knytt_store_model_put": (c_int, [c_ptr, c_str, c_ptr, c_size, c_str,
                                      P(c_i64)]),
    "knytt_store_model_get": (c_int, [c_ptr, c_str, c_i64, P(c_ptr),
                                      P(c_size), P(c_ptr), P(c_i64),
                                      P(c_i64)]),
    "knytt_store_import": (c_int, [c_ptr, c_str, c_int, c_int, REJECT_FN,
                                   c_ptr]),
    # matrix and ALS
    "knytt_matrix_create": (c_int, [P(c_ptr)]),
    "knytt_matrix_set_weight": (c_int, [c_ptr, c_uint, c_float]),
    "knytt_matrix_set_decay": (c_int, [c_ptr, c_double, c_i64]),
    "knytt_matrix_set_recency": (c_int, [c_ptr, c_double, c_double]),
    "knytt_matrix_add": (c_int, [c_ptr, c_u32, c_u32, c_uint, c_float,
                                 c_i64]),
    "knytt_matrix_build": (c_int, [c_ptr, c_u32, c_u32]),
    "knytt_matrix_close": (None, [c_ptr]),
    "knytt_matrix_users": (c_u32, [c_ptr]),
    "knytt_matrix_items": (c_u32, [c_ptr]),
    "knytt_matrix_nnz": (c_size, [c_ptr]),
    "knytt_als_create": (c_int, [P(c_ptr)]),
    "knytt_als_set_factors": (c_int, [c_ptr, c_uint]),
    "knytt_als_set_reg": (c_int, [c_ptr, c_float]),
    "knytt_als_set_alpha": (c_int, [c_ptr, c_float]),
    "knytt_als_set_iterations": (c_int, [c_ptr, c_uint]),
    "knytt_als_set_reg_exponent": (c_int, [c_ptr, c_float]),
    "knytt_als_set_seed": (c_int, [c_ptr, c_u64]),
    "knytt_als_set_threads": (c_int, [c_ptr, c_uint]),
    "knytt_als_set_solver": (c_int, [c_ptr, c_int, c_uint]),
    "knytt_als_set_progress": (c_int, [c_ptr, PROGRESS_FN, c_ptr]),
    "knytt_als_train": (c_int, [c_ptr, c_ptr]),
    "knytt_als_factors": (c_uint, [c_ptr]),
    "knytt_als_users": (c_u32, [c_ptr]),
    "knytt_als_items": (c_u32, [c_ptr]),
    "knytt_als_user_factors": (c_int, [c_ptr, c_u32, c_u32, c_ptr]),
    "knytt_als_item_factors": (c_int, [c_ptr, c_u32, c_u32, c_ptr]),
    "knytt_als_fold_in": (c_int, [c_ptr, c_size, c_ptr, c_ptr, c_ptr]),
    "knytt_als_score": (c_int, [c_ptr, c_u32, c_ptr, c_size, c_ptr]),
    "knytt_als_save": (c_int, [c_ptr, c_str]),
    "knytt_als_save_buffer": (c_int, [c_ptr, P(c_ptr), P(c_size)]),
    "knytt_als_load": (c_int, [c_ptr, c_str]),
    "knytt_als_load_buffer": (c_int, [c_ptr, c_ptr, c_size]),
    "knytt_als_close": (None, [c_ptr]),
    # two-tower
    "knytt_twotower_create": (c_int, [P(c_ptr)]),
    "knytt_twotower_close": (None, [c_ptr]),
    "knytt_twotower_set_dim": (c_int, [c_ptr, c_u32]),
    "knytt_twotower_set_epochs": (c_int, [c_ptr, c_uint]),
    "knytt_twotower_set_batch": (c_int, [c_ptr, c_uint]),
    "knytt_twotower_set_lr": (c_int, [c_ptr, c_float]),
    "knytt_twotower_set_temperature": (c_int, [c_ptr, c_float]),
    "knytt_twotower_set_seed": (c_int, [c_ptr, c_u64]),
    "knytt_twotower_set_threads": (c_int, [c_ptr, c_uint]),
    "knytt_twotower_set_buckets": (c_int, [c_ptr, c_u32]),
    "knytt_twotower_set_history": (c_int, [c_ptr, c_uint]),
    "knytt_twotower_set_id_dropout": (c_int, [c_ptr, c_float]),
    "knytt_twotower_set_progress": (c_int, [c_ptr, PROGRESS_FN, c_ptr]),
    "knytt_twotower_train": (c_int, [c_ptr, c_u32, c_u32, c_ptr, c_size,
                                     c_ptr, c_ptr, c_ptr, c_ptr]),
    "knytt_twotower_dim": (c_u32, [c_ptr]),
    "knytt_twotower_count_users": (c_u32, [c_ptr]),
    "knytt_twotower_count_items": (c_u32, [c_ptr]),
    "knytt_twotower_item_embeddings": (c_int, [c_ptr, c_ptr, c_size]),
    "knytt_twotower_user_embeddings": (c_int, [c_ptr, c_ptr, c_size]),
    "knytt_twotower_embed_item": (c_int, [c_ptr, P(TTItem), c_ptr]),
    "knytt_twotower_embed_query": (c_int, [c_ptr, c_str, c_ptr]),
    "knytt_twotower_embed_user": (c_int, [c_ptr, c_u32, c_ptr, c_size,
                                          c_ptr]),
    "knytt_twotower_save": (c_int, [c_ptr, c_str]),
    "knytt_twotower_save_buffer": (c_int, [c_ptr, P(c_ptr), P(c_size)]),
    "knytt_twotower_load": (c_int, [c_ptr, c_str]),
    "knytt_twotower_load_buffer": (c_int, [c_ptr, c_ptr, c_size]),
    # engine
    "knytt_filter_init_size": (None, [P(Filter), c_size]),
    "knytt_rec_options_init": (None, [P(RecOptions)]),
    "knytt_reason_name": (c_str, [c_int]),
    "knytt_engine_create": (c_int, [P(c_ptr)]),
    "knytt_engine_set_model": (c_int, [c_ptr, c_int]),
    "knytt_engine_set_dim": (c_int, [c_ptr, c_u32]),
    "knytt_engine_set_index": (c_int, [c_ptr, c_uint, c_uint, c_uint]),
    "knytt_engine_set_weight": (c_int, [c_ptr, c_str, c_double]),
    "knytt_engine_set_taste": (c_int, [c_ptr, c_double, c_double,
                                       c_double]),
    "knytt_engine_set_exclude_seen": (c_int, [c_ptr, c_int]),
    "knytt_engine_set_als": (c_int, [c_ptr, c_float, c_float, c_uint]),
    "knytt_engine_set_twotower": (c_int, [c_ptr, c_uint]),
    "knytt_engine_set_tenant": (c_int, [c_ptr, c_str]),
    "knytt_engine_set_threads": (c_int, [c_ptr, c_uint]),
    "knytt_engine_set_feedback_async": (c_int, [c_ptr, c_int]),
    "knytt_engine_open": (c_int, [c_ptr, c_str]),
    "knytt_engine_close": (None, [c_ptr]),
    "knytt_engine_store": (c_ptr, [c_ptr]),
    "knytt_engine_item_upsert": (c_int, [c_ptr, P(Item), c_ptr, c_u32]),
    "knytt_engine_item_delete": (c_int, [c_ptr, c_str]),
    "knytt_engine_sync": (c_int, [c_ptr]),
    "knytt_engine_feedback": (c_int, [c_ptr, c_str, c_str, c_str, c_double,
                                      c_i64]),
    "knytt_engine_flush": (c_int, [c_ptr]),
    "knytt_engine_recommend": (c_int, [c_ptr, c_str, c_size, P(Filter),
                                       P(RecOptions), c_ptr]),
    "knytt_engine_similar": (c_int, [c_ptr, c_str, c_size, P(Filter),
                                     c_ptr]),
    "knytt_engine_search": (c_int, [c_ptr, c_str, c_ptr, c_u32, c_size,
                                    P(Filter), c_str, c_ptr, P(c_u64)]),
    "knytt_engine_embed_query": (c_int, [c_ptr, c_str, c_ptr, c_u32]),
    "knytt_engine_dim": (c_u32, [c_ptr]),
    "knytt_engine_set_profile_cache": (c_int, [c_ptr, c_u64]),
    "knytt_engine_profile_cache_info": (c_int, [c_ptr,
                                                ctypes.POINTER(ProfileCacheInfo)]),
    "knytt_engine_trending": (c_int, [c_ptr, c_size, c_double, c_str,
                                      c_ptr]),
    "knytt_engine_train": (c_int, [c_ptr, PROGRESS_FN, c_ptr]),
    "knytt_engine_train_start": (c_int, [c_ptr, PROGRESS_FN, c_ptr]),
    "knytt_engine_train_wait": (c_int, [c_ptr]),
    "knytt_engine_train_status": (c_int, [c_ptr, P(TrainStatus)]),
}

for _name, (_res, _args) in _PROTOS.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args

del _name, _res, _args, _fn
