"""
The error text of a result: what a transaction (or its ``setup``,
``tear_down`` or custom timers) raised, in one line.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.python.failure import Failure

from octtwisted._http.fast.tlserrors import tls_failure

#: Longest error text put into a result; longer ones are cut.
MAX_ERROR_LENGTH = 1000


def describe_error(error: BaseException | Failure, limit: int = MAX_ERROR_LENGTH) -> str:
    """
    ``"ExceptionType: message"``, cut to ``limit`` characters (a 1 MB
    message too), with any lone surrogate
    (invalid UTF-8 that a script decoded with ``surrogateescape``) written
    as its escape, ``\\udcff``: the text is valid UTF-8 in every output.
    Other characters are kept as they are: each output makes them inert
    its own way (see :doc:`reliability`). A TLS
    failure of either HTTP client, wrapped by treq or not, is its one-line
    text instead (``certificate verify failed: self-signed certificate
    (127.0.0.1:8443); ...``, see :mod:`octtwisted._http.fast.tlserrors`).
    """
    if isinstance(error, Failure):
        error = error.value if error.value is not None else Exception("unknown error")
    tls = tls_failure(error)
    if tls is not None:
        text = str(tls)
    elif isinstance(error, defer.TimeoutError) and error.args:
        text = str(error.args[0])
    else:
        message = str(error)
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return cut_error(text, limit)


def cut_error(text: str, limit: int = MAX_ERROR_LENGTH) -> str:
    """
    An error text as a result holds it: cut to ``limit`` characters, any
    lone surrogate written as its escape (``\\udcff``).
    """
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(text) > limit:
            text = text[: limit - 3] + "..."
    return text

