"""knytt.Error and one subclass per KNYTT_E* code.

The classes are named after the codes of include/knytt.h (EINVAL,
ENOTFOUND, ...) so that a reader of the C documentation knows which one
a call raises.  Each also derives from the closest built-in exception
where one fits, so ``except ValueError`` catches a bad argument.
"""

from ._lib import lib


class Error(Exception):
    """A knytt call failed.

    ``code`` is the negative KNYTT_E* value, ``name`` its symbolic name
    ("KNYTT_EINVAL") and ``message`` the library's detail
    (knytt_errmsg), which names the field, line or file at fault;
    ``field`` is that field's name alone (knytt_errfield: "price",
    "type", ...) or None when the failure named none.
    """

    code = None

    def __init__(self, message, code=None, field=None):
        if code is not None:
            self.code = code
        self.name = lib.knytt_errname(self.code).decode()
        self.message = message
        self.field = field
        super().__init__("%s: %s" % (self.name, message))


def _make(name, code, bases=()):
    doc = lib.knytt_errstr(code).decode()
    return type(name, (Error,) + bases, {"code": code, "__doc__": doc,
                                         "__module__": "knytt"})


EINVAL = _make("EINVAL", -1, (ValueError,))
ENOMEM = _make("ENOMEM", -2, (MemoryError,))
EIO = _make("EIO", -3)
ECORRUPT = _make("ECORRUPT", -4)
ENOTFOUND = _make("ENOTFOUND", -5, (LookupError,))
EEXIST = _make("EEXIST", -6)
ERANGE = _make("ERANGE", -7, (ValueError,))
EVERSION = _make("EVERSION", -8)
ESTATE = _make("ESTATE", -9)
EDB = _make("EDB", -10)
EAUTH = _make("EAUTH", -11, (PermissionError,))
ETIMEDOUT = _make("ETIMEDOUT", -12, (TimeoutError,))
EPROTO = _make("EPROTO", -13)
ENOTSUP = _make("ENOTSUP", -14, (NotImplementedError,))
ECANCELED = _make("ECANCELED", -15)
EBUSY = _make("EBUSY", -16)

BY_CODE = {cls.code: cls for cls in (
    EINVAL, ENOMEM, EIO, ECORRUPT, ENOTFOUND, EEXIST, ERANGE, EVERSION,
    ESTATE, EDB, EAUTH, ETIMEDOUT, EPROTO, ENOTSUP, ECANCELED, EBUSY)}


def error(code, message=None):
    """The exception for a negative @code, with the thread's message."""
    field = None
    if message is None:
        message = lib.knytt_errmsg().decode("utf-8", "replace")
        if not message:
            message = lib.knytt_errstr(code).decode()
        field = lib.knytt_errfield().decode("utf-8", "replace") or None
    cls = BY_CODE.get(code)
    if cls is None:
        return Error(message, code, field)
    return cls(message, field=field)


def check(rc):
    """Returns @rc when it is not negative, raises its Error otherwise."""
    if rc < 0:
        raise error(rc)
    return rc


def cstr(s, what):
    """str or bytes -> bytes for a const char * argument named @what.

    None stays NULL.  C stops reading at the first NUL, so a string
    holding one would reach the library cut short (an id "a\\0b" would
    address item "a"); it is refused here instead, naming the argument.
    """
    if s is None:
        return None
    if isinstance(s, str):
        s = s.encode("utf-8")
    elif not isinstance(s, bytes):
        raise TypeError("%s: expected a string, got %s"
                        % (what, type(s).__name__))
    if b"\0" in s:
        raise EINVAL("%s must not contain NUL characters" % what)
    return s


def cpath(path, what="path"):
    """A file system path (str, bytes or os.PathLike) for C, NUL-checked."""
    import os
    return cstr(os.fsencode(path), what)
