"""
A lean HTTP/1.1 keep-alive client for load-test scripts.

:class:`FastHTTPClient` speaks ``http://`` and ``https://`` straight on
Twisted's protocol layer (TLS with the standard library's ``ssl`` over
memory buffers, see :mod:`.tlsconn`) and parses responses with the
``httptools`` C parser (llhttp). It exists because per-request CPU is what
limits how hard one turret process can push: treq/Agent spends several
hundred microseconds of Python per request, this client a small fraction
of that. Scripts see it through a per-cannon :class:`FastSession`
(cookies, redirects, decoding). For streaming bodies, HTTP/2 or proxies
use treq (``self.http``).

The package, module by module, from the top; each imports only modules
listed below it:

* :mod:`.session`, :mod:`.cookies`: the per-cannon session;
* :mod:`.client`: :class:`FastHTTPClient`, request bytes and their cache;
* :mod:`.pool`: the connections to one host and the requests queued for
  them;
* :mod:`.tlsconn`: an HTTP/1.1 connection over TLS;
* :mod:`.connection`: one HTTP/1.1 connection, the request it carries, the
  response parser; what it uses of the pool, the client and the session
  above it is written there as protocols (types only);
* :mod:`.response`: :class:`FastResponse`;
* :mod:`.options`: ``params=``, ``data=``, ``json=``, ``auth=``;
* :mod:`.tlserrors`: the words of TLS failures, for both clients (treq's
  too: :mod:`octtwisted._http.treqtls`);
* :mod:`.errors`: what can go wrong, one class each;
* :mod:`.sockwrite`: the write that gives bytes to the socket at once.

What one request costs on the hot path (an idle kept-alive connection is
free):

* one dictionary look-up for the request bytes, cached per
  ``(method, url)`` when no body and no extra headers are given;
* one :class:`~twisted.internet.defer.Deferred` (the object that is
  returned, which also carries the request's state);
* one ``transport.write``;
* the parser callbacks, and one :class:`FastResponse`.

Timeouts reuse one timer per connection (pushed later for each request,
which is cheap) rather than arming and cancelling a timer per request.

Connection handling, per ``(host, port)``:

* idle kept-alive connections are reused (most recently used first);
* at most ``connections_per_host`` connections are open or opening at once;
  further requests wait in a FIFO queue and take the next connection that
  becomes free;
* a connection whose response said ``Connection: close`` (or was HTTP/1.0
  without keep-alive, or whose body ran until the connection closed) is
  closed after that response;
* a connection whose request timed out or was cancelled is closed, never
  reused;
* connections are opened with ``reactor.connectTCP`` (cheaper than an
  endpoint) and have ``TCP_NODELAY`` set; ``https://`` ones then do a TLS
  handshake (SNI, ALPN ``http/1.1``, the run's one ``ssl.SSLContext``,
  the host's last session offered again);
* **one retry**: a request sent on a *reused* idle connection that the
  server had meanwhile closed -- the connection is lost before a single
  byte of the response arrived -- is sent again, once, on a new connection.
  Only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried; a
  POST in that situation fails with :class:`ConnectionLost`.

Example, inside a non-blocking script::

    client = FastHTTPClient(reactor, connections_per_host=50, timeout=5)
    response = await client.get("http://127.0.0.1:8080/")
    assert response.code == 200, response.text()
    await client.close()
"""


from octtwisted._http.fast.client import FastHTTPClient
from octtwisted._http.fast.cookies import Cookie, CookieJar
from octtwisted._http.fast.errors import (
    CertificateError,
    ClientClosed,
    ConnectError,
    ConnectionLost,
    HTTPError,
    ProtocolError,
    ResponseTimeout,
    ResponseTooLarge,
    TLSError,
)
from octtwisted._http.fast.response import FastResponse
from octtwisted._http.fast.session import FastSession, TooManyRedirects

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
