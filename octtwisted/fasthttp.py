"""
Public: the fast HTTP client of ``self.fast_http``, its session, responses
and errors.

Scripts catch these errors by name (``except octtwisted.fasthttp.HTTPError``);
the client itself is made by the turret, one per run, and each cannon's
``self.fast_http`` is a :class:`FastSession` over it.
"""

from octtwisted._http.fast import (
    CertificateError,
    ClientClosed,
    ConnectError,
    ConnectionLost,
    Cookie,
    CookieJar,
    FastHTTPClient,
    FastResponse,
    FastSession,
    HTTPError,
    ProtocolError,
    ResponseTimeout,
    ResponseTooLarge,
    TLSError,
    TooManyRedirects,
)

__all__ = [
    "CertificateError",
    "ClientClosed",
    "ConnectError",
    "ConnectionLost",
    "Cookie",
    "CookieJar",
    "FastHTTPClient",
    "FastResponse",
    "FastSession",
    "HTTPError",
    "ProtocolError",
    "ResponseTimeout",
    "ResponseTooLarge",
    "TLSError",
    "TooManyRedirects",
]
