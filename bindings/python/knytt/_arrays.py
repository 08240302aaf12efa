"""Vectors in and out: numpy arrays by address, plain sequences copied.

A float32, C-contiguous numpy array is handed to the library as its own
buffer (no copy); any other numpy array is refused with a message saying
what to change, because a silent conversion would hide a copy of every
query.  Without numpy (or for plain lists) the values are copied into a
ctypes array and results come back as lists.
"""

import ctypes
import operator
import os

try:
    if os.environ.get("KNYTT_NO_NUMPY"):
        raise ImportError("KNYTT_NO_NUMPY is set")
    import numpy as np
except ImportError:
    np = None

HAVE_NUMPY = np is not None


def address(arr):
    """The address of a numpy array's buffer.  Through ctypes' buffer
    protocol rather than arr.ctypes: that helper object is slow to make
    and, measured on batch search, costs tens of microseconds per call
    beyond its own time (benchmarks/bindings)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(arr))
    except (TypeError, ValueError, BufferError):   # read-only or empty
        return arr.ctypes.data


class Vectors:
    """A float matrix passed to C: ``ptr`` (address), ``rows``, ``dim``.

    ``keep`` holds whatever owns the memory while the call runs.
    """

    __slots__ = ("ptr", "rows", "dim", "keep")

    def __init__(self, ptr, rows, dim, keep):
        self.ptr, self.rows, self.dim, self.keep = ptr, rows, dim, keep


def _numpy_vectors(arr, what, ndim):
    if arr.dtype != np.float32:
        raise TypeError("%s must be float32, got %s (use "
                        "arr.astype(numpy.float32))" % (what, arr.dtype))
    if not arr.flags.c_contiguous:
        raise TypeError("%s must be C-contiguous (use "
                        "numpy.ascontiguousarray(arr))" % what)
    if arr.ndim == 1:
        rows, dim = 1, arr.shape[0]
    elif arr.ndim == 2:
        rows, dim = arr.shape
    else:
        raise ValueError("%s must have 1 or 2 dimensions, has %d"
                         % (what, arr.ndim))
    if ndim == 1 and arr.ndim != 1:
        raise ValueError("%s must be one vector (1-d), has shape %s"
                         % (what, arr.shape))
    return Vectors(address(arr), rows, dim, arr)


def vectors(obj, what, ndim=2):
    """@obj as a row-major float32 matrix (ndim 2) or one vector (ndim 1).

    A 1-d input counts as one row when ndim is 2.
    """
    if np is not None and isinstance(obj, np.ndarray):
        return _numpy_vectors(obj, what, ndim)
    if isinstance(obj, memoryview) or hasattr(obj, "__array_interface__"):
        if np is None:
            raise TypeError("%s: buffers need numpy; pass a list" % what)
        return _numpy_vectors(np.asarray(obj), what, ndim)
    try:
        seq = list(obj)
    except TypeError:
        raise TypeError("%s must be a float32 numpy array or a sequence of "
                        "floats, got %s" % (what, type(obj).__name__))
    if seq and isinstance(seq[0], (list, tuple)) or (
            seq and np is not None and isinstance(seq[0], np.ndarray)):
        if ndim == 1:
            raise ValueError("%s must be one vector, got a list of %d rows"
                             % (what, len(seq)))
        dim = len(seq[0])
        flat = []
        for i, row in enumerate(seq):
            if len(row) != dim:
                raise ValueError("%s: row %d has %d values, row 0 has %d"
                                 % (what, i, len(row), dim))
            flat.extend(row)
        rows = len(seq)
    else:
        flat, rows, dim = seq, 1, len(seq)
    try:
        buf = (ctypes.c_float * len(flat))(*flat)
    except TypeError:
        raise TypeError("%s must hold numbers" % what)
    return Vectors(ctypes.addressof(buf), rows, dim, buf)


def _label(v, what):
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError("%s must be integers, got %s"
                        % (what, type(v).__name__))
    if v < 0 or v >= 1 << 64:
        raise ValueError("%s must be in 0..2**64-1, got %d" % (what, v))
    return v


def labels_in(obj, n, what="labels"):
    """@obj as n uint64 labels: (address, owner)."""
    if np is not None and isinstance(obj, np.ndarray):
        if obj.dtype != np.uint64 and obj.dtype != np.int64:
            raise TypeError("%s must be uint64 (or int64), got %s"
                            % (what, obj.dtype))
        if not obj.flags.c_contiguous or obj.ndim != 1:
            raise TypeError("%s must be a 1-d C-contiguous array" % what)
        if obj.dtype == np.int64 and obj.size and obj.min() < 0:
            raise ValueError("%s must not be negative" % what)
        arr = obj
    else:
        seq = [_label(v, what) for v in obj]
        arr = (ctypes.c_uint64 * len(seq))(*seq)
        if len(seq) != n:
            raise ValueError("%s has %d entries for %d vectors"
                             % (what, len(seq), n))
        return ctypes.addressof(arr), arr
    if len(arr) != n:
        raise ValueError("%s has %d entries for %d vectors"
                         % (what, len(arr), n))
    return address(arr), arr


def out_u64(n):
    """(argument, owner) for n uint64 written by C: a ctypes array, which
    numpy wraps without a copy when present."""
    arr = (ctypes.c_uint64 * n)()
    return arr, (np.frombuffer(arr, np.uint64) if np is not None else arr)


def out_f32(n):
    arr = (ctypes.c_float * n)()
    return arr, (np.frombuffer(arr, np.float32) if np is not None else arr)


def shaped(arr, rows, cols):
    """Output @arr as rows x cols (numpy) or a list of lists."""
    if np is not None:
        return arr.reshape(rows, cols)
    flat = list(arr)
    return [flat[i * cols:(i + 1) * cols] for i in range(rows)]


def head(arr, n):
    """The first n entries of an output array (a view with numpy)."""
    if np is not None:
        return arr[:n]
    return list(arr[:n])
