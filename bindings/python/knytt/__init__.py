"""knytt: product search and recommendations from libknytt, over ctypes.

    import numpy as np, knytt
    with knytt.Index(128, metric="l2") as ix:
        ix.add_batch(np.arange(n, dtype=np.uint64), vectors)
        labels, dists = ix.search(query, k=10)

The package is a thin layer over include/knytt.h: the classes map to the
library's handles (Index, Store, Engine, ALS, TwoTower), failures raise a
knytt.Error subclass named after the error code (knytt.EINVAL, ...) with
the library's message, and float32 numpy arrays pass by address.  The
library is found through $KNYTT_LIBRARY, next to the package, in a
source checkout's build/, or as the installed libknytt.so.1.
"""

from ._lib import lib as _cdll
from ._arrays import HAVE_NUMPY
from .errors import (Error, EINVAL, ENOMEM, EIO, ECORRUPT, ENOTFOUND, EEXIST,
                     ERANGE, EVERSION, ESTATE, EDB, EAUTH, ETIMEDOUT, EPROTO,
                     ENOTSUP, ECANCELED, EBUSY)
from .index import Index, IdSet, exact_knn, distance, NO_LABEL
from .store import Store
from .engine import Engine, Rec, ProgressInfo
from .models import ALS, TwoTower, Matrix
from .embedder import Embedder

__version__ = "1.0.0"


def version():
    """The version of the libknytt actually loaded ("1.0.0")."""
    return _cdll.knytt_version().decode()


def simd_name():
    """The SIMD tier the library chose ("avx2", ...)."""
    return _cdll.knytt_simd_name().decode()


__all__ = ["Index", "IdSet", "exact_knn", "distance", "NO_LABEL", "Store",
           "Engine", "Rec", "ProgressInfo", "ALS", "TwoTower", "Matrix", "Embedder",
           "Error", "EINVAL", "ENOMEM", "EIO", "ECORRUPT", "ENOTFOUND",
           "EEXIST", "ERANGE", "EVERSION", "ESTATE", "EDB", "EAUTH",
           "ETIMEDOUT", "EPROTO", "ENOTSUP", "ECANCELED", "EBUSY",
           "version", "simd_name", "HAVE_NUMPY"]
