"""
Public: the fast HTTP client of ``self.fast_http``, and its errors.

Scripts catch these errors by name (``except octtwisted.fasthttp.HTTPError``);
the client itself is made by the turret, one per run.
"""

from octtwisted._http.fast import (
    ClientClosed,
    ConnectError,
    ConnectionLost,
    FastHTTPClient,
    FastResponse,
    HTTPError,
    ProtocolError,
    ResponseTimeout,
)

__all__ = [
    "ClientClosed",
    "ConnectError",
    "ConnectionLost",
    "FastHTTPClient",
    "FastResponse",
    "HTTPError",
    "ProtocolError",
    "ResponseTimeout",
]
