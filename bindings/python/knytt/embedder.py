"""knytt.Embedder: text embeddings from an OpenAI-compatible
/v1/embeddings server (knytt_embedder_*)."""

import ctypes

from . import _arrays as A
from ._lib import lib
from .errors import check, cstr, EINVAL

_c = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32
_PROTOS = {
    "knytt_embedder_create": (ctypes.c_int, [ctypes.POINTER(_c[0])]),
    "knytt_embedder_set_url": (ctypes.c_int, [_c[0], _c[1]]),
    "knytt_embedder_set_model": (ctypes.c_int, [_c[0], _c[1]]),
    "knytt_embedder_set_api_key": (ctypes.c_int, [_c[0], _c[1]]),
    "knytt_embedder_set_timeout_ms": (ctypes.c_int, [_c[0], ctypes.c_long]),
    "knytt_embedder_set_dim": (ctypes.c_int, [_c[0], _c[3]]),
    "knytt_embedder_open": (ctypes.c_int, [_c[0]]),
    "knytt_embedder_embed": (ctypes.c_int, [_c[0], _c[2], _c[0], _c[0],
                                            _c[3]]),
    "knytt_embedder_probe": (ctypes.c_int, [_c[0]]),
    "knytt_embedder_dim": (_c[3], [_c[0]]),
    "knytt_embedder_close": (None, [_c[0]]),
}
for _name, (_res, _args) in _PROTOS.items():
    getattr(lib, _name).restype = _res
    getattr(lib, _name).argtypes = _args


class Embedder:
    """Embedder(url, model=None, api_key=None, timeout_ms=0, dim=0).

    The settings are applied and the embedder opened at once (open does
    not contact the server; probe() does).  ctypes releases the GIL for
    each call, so requests from several threads run in parallel."""

    def __init__(self, url, model=None, api_key=None, timeout_ms=0, dim=0):
        h = ctypes.c_void_p()
        check(lib.knytt_embedder_create(ctypes.byref(h)))
        self._h = h.value
        try:
            check(lib.knytt_embedder_set_url(self._h, cstr(url, "url")))
            check(lib.knytt_embedder_set_model(self._h,
                                               cstr(model, "model")))
            check(lib.knytt_embedder_set_api_key(self._h,
                                                 cstr(api_key, "api_key")))
            check(lib.knytt_embedder_set_timeout_ms(self._h, int(timeout_ms)))
            if dim:
                check(lib.knytt_embedder_set_dim(self._h, int(dim)))
            check(lib.knytt_embedder_open(self._h))
        except BaseException:
            self.close()
            raise

    @property
    def handle(self):
        if not self._h:
            from .errors import ESTATE
            raise ESTATE("the embedder is closed")
        return self._h

    @property
    def dim(self):
        """The dimension: set or learned from an answer; 0 while unknown."""
        return lib.knytt_embedder_dim(self.handle)

    def probe(self):
        """Asks the server once if the dimension is unknown; returns it."""
        return check(lib.knytt_embedder_probe(self.handle))

    def embed(self, texts):
        """len(texts) x dim float32 rows (numpy, or lists without it)."""
        if isinstance(texts, (str, bytes)):
            raise EINVAL("texts must be a sequence of strings")
        enc = [cstr(t, "texts[%d]" % i) for i, t in enumerate(texts)]
        n = len(enc)
        if n == 0:
            return A.shaped(A.out_f32(0)[1], 0, self.dim)
        dim = self.dim or self.probe()
        arr = (ctypes.c_char_p * n)(*enc)
        ptr, out = A.out_f32(n * dim)
        check(lib.knytt_embedder_embed(self.handle, n, ctypes.addressof(arr),
                                       ctypes.addressof(ptr), dim))
        return A.shaped(out, n, dim)

    def close(self):
        if self._h:
            lib.knytt_embedder_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
