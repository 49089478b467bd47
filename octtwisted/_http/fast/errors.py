"""
The errors :class:`~octtwisted._http.fast.client.FastHTTPClient` reports.

Each one's ``str()`` is a single line that says what happened; the turret
puts it in the error result of the transaction that raised it.
"""

from __future__ import annotations

import errno

from twisted.internet import error
from twisted.python.failure import Failure

from octtwisted._core.httplimits import over_text
from octtwisted._http.fast import descriptors


class HTTPError(Exception):
    """
    Base of every error :class:`FastHTTPClient` reports; ``str()`` of one is
    a single line that says what happened.
    """


class ConnectError(HTTPError):
    """
    No connection could be made, e.g. ``connection refused: 127.0.0.1:8080``.

    :ivar address: ``host:port``.
    :ivar reason: what went wrong, e.g. ``connection refused``.
    """

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{reason}: {address}")
        self.address = address
        self.reason = reason


class ConnectionLost(HTTPError):
    """
    The connection ended before the whole response had been read.

    :ivar address: ``host:port``.
    """

    def __init__(self, address: str) -> None:
        super().__init__(f"connection closed by {address} before the response was complete")
        self.address = address


class ResponseTimeout(HTTPError):
    """
    The whole response (status line, headers and body) had not arrived
    within the timeout, e.g. ``timeout after 2s``.

    :ivar timeout: the timeout in seconds.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(f"timeout after {timeout:g}s")
        self.timeout = timeout


class ProtocolError(HTTPError):
    """
    The server sent bytes that are not a valid HTTP/1.x response.

    :ivar address: ``host:port``.
    :ivar detail: the parser's complaint.
    """

    def __init__(self, address: str, detail: str) -> None:
        super().__init__(f"invalid HTTP response from {address}: {detail}")
        self.address = address
        self.detail = detail


class ResponseTooLarge(HTTPError):
    """
    The response passed one of the request's limits, and was given up (its
    connection closed), e.g. ``response body over 32 MiB
    (max_response_body): 127.0.0.1:8080``.

    :ivar address: ``host:port``.
    :ivar what: ``"body"`` or ``"head"``.
    :ivar limit: the limit passed (bytes, or header fields for
        ``max_response_headers``).
    :ivar key: the config key (and keyword) that sets it.

    A session's body that passes ``max_response_body`` as it is decoded
    (gzip, deflate) says ``once decoded``.
    """

    def __init__(self, address: str, what: str, limit: int, key: str, decoded: bool = False) -> None:
        if key == "max_response_headers":
            reason = f"response head over {limit} header fields ({key})"
        else:
            reason = over_text(what + (" once decoded" if decoded else ""), limit, key)
        super().__init__(f"{reason}: {address}")
        self.address = address
        self.what = what
        self.limit = limit
        self.key = key


class ClientClosed(HTTPError):
    """
    The request was still queued or in flight when
    :meth:`FastHTTPClient.close` was called, or was made after it.
    """


class TLSError(HTTPError):
    """
    The TLS layer failed: the handshake was refused or broke, or the
    server sent a TLS alert, e.g. ``TLS error: tlsv13 alert certificate
    required (127.0.0.1:8443); the server requires a client certificate:
    set tls_client_cert and tls_client_key``.

    Both clients' TLS failures are made by
    :mod:`octtwisted._http.fast.tlserrors`, in the same words.

    :ivar address: ``host:port`` (``None`` when not known).
    :ivar reason: OpenSSL's reason, in its words.
    :ivar hint: what to do about it (may be ``""``).
    """

    def __init__(self, address: str | None, reason: str, hint: str = "") -> None:
        super().__init__(_tls_text("TLS error", address, reason, hint))
        self.address = address
        self.reason = reason
        self.hint = hint


class CertificateError(TLSError):
    """
    The server's certificate did not verify, e.g. ``certificate verify
    failed: self-signed certificate (127.0.0.1:8443); see tls_ca and
    tls_verify in the turret config``.

    :ivar address: ``host:port`` (``None`` when not known).
    :ivar reason: why, as OpenSSL (or the host name check) says it.
    :ivar hint: what to do about it.
    """

    def __init__(
        self, address: str | None, reason: str, hint: str = "see tls_ca and tls_verify in the turret config"
    ) -> None:
        HTTPError.__init__(self, _tls_text("certificate verify failed", address, reason, hint))
        self.address = address
        self.reason = reason
        self.hint = hint


def _tls_text(what: str, address: str | None, reason: str, hint: str) -> str:
    """
    ``what: reason (address); hint``: why first, so that a table that cuts
    long texts still shows it.
    """
    return f"{what}: {reason}" + (f" ({address})" if address else "") + (f"; {hint}" if hint else "")


def one_line(text: str) -> str:
    """``text`` on one line: each run of white space made one space."""
    return " ".join(text.split())


def connect_reason(failure: Failure, connect_timeout: float) -> str:
    """
    A short description of why a connection attempt failed.
    """
    exc = failure.value
    if isinstance(exc, error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, error.TimeoutError):
        return f"connect timeout after {connect_timeout:g}s"
    if isinstance(exc, error.TCPTimedOutError):
        return "connection timed out"
    if isinstance(exc, error.DNSLookupError):
        return "DNS lookup failed"
    if isinstance(exc, error.NoRouteError):
        return "no route to host"
    number = getattr(exc, "osError", None) or getattr(exc, "errno", None)
    if number == errno.EMFILE:
        return descriptors.DESCRIPTORS.exhausted()
    if number == errno.ENFILE:
        return "too many open files in the system (fs.file-max)"
    return one_line(f"cannot connect ({failure.getErrorMessage()})")


