"""
:class:`FastHTTPClient`: the pools of one run, and how a call becomes the
bytes of a request.
"""

from __future__ import annotations

import ssl
from typing import Any, Mapping
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core.httplimits import HTTPLimits
from octtwisted._http.fast.connection import Request, Session, cancel_request
from octtwisted._http.fast.errors import ClientClosed, HTTPError
from octtwisted._http.fast.options import CLIENT_OPTIONS, HeadersArg, apply_options
from octtwisted._http.fast.pool import HostPool
from octtwisted._http.fast.response import FastResponse

#: The ``timeout`` argument's default: "use the client's default timeout"
#: (``None`` means no timeout).
DEFAULT_TIMEOUT: Any = object()

#: Methods whose request may be sent a second time (see the module doc).
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS"})

#: Methods that get ``Content-Length: 0`` when sent without a body.
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})

#: The characters an HTTP method (a "token") may have.
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#: Cached request targets per client; the cache is emptied when it is full
#: (scripts that make every URL unique must not grow it without end).
_TARGET_CACHE_SIZE = 4096


class _Target:
    """
    What a ``(method, url)`` turns into, cached by the client.
    """

    __slots__ = (
        "pool", "method", "line", "host_line", "full", "idempotent", "head", "name", "verb",
    )

    def __init__(
        self, pool: HostPool, method: bytes, line: bytes, host_line: bytes, path: str
    ) -> None:
        self.pool = pool
        self.method = method
        #: the method as text, and the default request name (``GET /path``)
        self.verb = method.decode("ascii")
        self.name = f"{self.verb} {path}"
        #: ``GET /path HTTP/1.1\r\n``
        self.line = line
        #: ``Host: example.com:8080\r\n``
        self.host_line = host_line
        length = b"Content-Length: 0\r\n" if method in _BODY_METHODS else b""
        #: The whole request when there is no body and no extra header.
        self.full = line + host_line + b"User-Agent: oct-twisted\r\n" + length + b"\r\n"
        self.idempotent = method in _IDEMPOTENT
        self.head = method == b"HEAD"



def body_limit(value: Any) -> int:
    """
    ``value`` as a request's ``max_response_body=``: an integer >= 1.

    :raise HTTPError: for anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HTTPError(f"max_response_body must be an integer >= 1 (bytes), got {value!r}")
    return value


class FastHTTPClient:
    """
    A pooling HTTP/1.1 keep-alive client for ``http://`` and ``https://``
    URLs. (Scripts get a per-cannon :class:`~octtwisted._http.fast.session.FastSession`
    over the run's client as ``self.fast_http``: it adds cookies, redirects
    and decoding.)

    Per ``(host, port)`` it reuses idle connections, opens at most
    ``connections_per_host`` at once and queues further requests first come
    first served; a connection is closed after a response that does not
    allow keep-alive, and after a timeout or cancellation.

    Retry: a request sent on a reused idle connection that the server had
    already closed (the connection is lost before any byte of the response
    arrives) is sent again **once** on a new connection, and only if its
    method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS). Nothing else is
    ever retried.

    :param reactor: the reactor to connect with.
    :param connections_per_host: the most connections open (or opening)
        at once to one ``(host, port)``; more requests wait, first come
        first served.
    :param timeout: the default timeout in seconds for a whole request,
        from the call to the last byte of the body (queueing and
        connecting included), or ``None`` for none.
    :param connect_timeout: seconds allowed for a TCP connect.
    :param tls_context: the :class:`ssl.SSLContext` every ``https://``
        connection of this client uses (one per run: sessions are resumed
        through it); if ``None``, one that verifies against the system's
        trust store is made on the first ``https://`` URL.
    :param limits: how much of a response is read before the request is
        given up with :class:`ResponseTooLarge` (the config's
        ``max_response_body``, ``max_response_head`` and
        ``max_response_headers``); a request's ``max_response_body=``
        overrides the first.

    :ivar requests: requests accepted so far.
    :ivar connections_opened: connections attempted so far.
    """

    def __init__(
        self,
        reactor: Any,
        connections_per_host: int = 100,
        timeout: float | None = 30.0,
        connect_timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        limits: HTTPLimits = HTTPLimits(),
    ) -> None:
        if connections_per_host < 1:
            raise ValueError("connections_per_host must be at least 1")
        self.reactor = reactor
        self.connections_per_host = connections_per_host
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.requests = 0
        self.connections_opened = 0
        self.closed = False
        self.tls_context = tls_context
        self.limits = limits
        #: The limits to set on each request, or None when they are the
        #: defaults (a request's class attributes).
        self._limits = (
            None if limits == HTTPLimits() else (limits.body, limits.head, limits.headers)
        )
        self._pools: dict[tuple[str, int, bool], HostPool] = {}
        self._targets: dict[tuple[bytes | str, str], _Target] = {}
        #: counts each request in the run's per-request statistics (see
        #: :mod:`octtwisted._http.recording`), or None
        self.recording: Any = None

    # -- making requests ------------------------------------------------------

    def request(
        self,
        method: bytes | str,
        url: str,
        body: bytes | None = None,
        headers: HeadersArg = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_response_body: int | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Deferred[FastResponse]:
        """
        Send one request; the result fires with a :class:`FastResponse` once
        the whole body has been read.

        :param method: e.g. ``b"GET"`` or ``"POST"``.
        :param url: an ``http://`` or ``https://`` URL.
        :param body: the request body; ``Content-Length`` is set from it.
        :param headers: extra headers, as a dict or ``(name, value)`` pairs
            (``str`` or ``bytes``); a ``Host`` or ``User-Agent`` given here
            replaces the default one, a ``Content-Length`` is ignored.
        :param timeout: seconds for the whole request, ``None`` for no
            timeout; the client's default if not given.
        :param max_response_body: the most bytes of body this request
            reads (an integer >= 1); the client's (the config's
            ``max_response_body``) if not given.
        :param name: the request's name in the per-request statistics
            (default ``METHOD /path``, without the query).
        :param options: any of ``params=`` (a dict or pairs, added to the
            URL's query), ``data=`` (bytes or str as the body; a dict or
            pairs as an HTML form), ``json=`` (any JSON-able value, sent as
            ``application/json``) and ``auth=`` (``(user, password)`` for
            HTTP basic authentication). They cost nothing when not given.

        The result fails with :class:`ConnectError`, :class:`ConnectionLost`,
        :class:`ResponseTimeout`, :class:`ProtocolError`,
        :class:`ResponseTooLarge`, :class:`TLSError`
        (:class:`CertificateError` when the server's certificate did not
        verify) or :class:`ClientClosed`, or at once with :class:`HTTPError`
        for a URL or option it cannot use. Cancelling it closes the
        connection the request was on. This method never raises.
        """
        if options:
            try:
                url, body, headers = apply_options(url, body, headers, options, CLIENT_OPTIONS)
            except Exception as exc:
                return defer.fail(exc)
        if max_response_body is not None:
            try:
                max_response_body = body_limit(max_response_body)
            except HTTPError as exc:
                return defer.fail(exc)
        return self._send(
            method, url, body, headers, timeout, None, max_body=max_response_body, name=name
        )

    def _send(
        self,
        method: bytes | str,
        url: str,
        body: bytes | None,
        headers: HeadersArg,
        timeout: float | None,
        session: Session | None,
        follow: int = -1,
        history: tuple[FastResponse, ...] | list[FastResponse] = (),
        max_body: int | None = None,
        name: str | None = None,
    ) -> Deferred[FastResponse]:
        """
        The request itself (the hot path); ``session``, if given, sees the
        response first (cookies, decoding, and redirects while ``follow``,
        the redirects left, is not negative; ``history`` is the chain so
        far); ``max_body``: the request's own body limit, if any; ``name``:
        its name in the per-request statistics (a redirect's hops, sent
        with a ``history``, are not counted: the first request is, until
        the last response).
        """
        try:
            target = self._targets.get((method, url))
            if self.closed:
                raise ClientClosed("FastHTTPClient is closed")
            if target is None:
                target = self._target(method, url)
            if body is None and headers is None:
                data = target.full
            else:
                data = self._build(target, body, headers)
        except Exception as exc:
            return defer.fail(exc)
        recording = self.recording
        if recording is not None and not history:
            # the recording's RecordedRequest (this layer does not import it)
            recorded = recording.Request(cancel_request)
            recorded.recording = recording
            recorded.name = target.name if name is None else name
            recorded.verb = target.verb
            recorded.started = recording.seconds()
            req: Request = recorded
        else:
            req = Request(cancel_request)  # type: ignore[arg-type]  # its canceller takes the request itself
        req.data = data
        req.timeout = self.timeout if timeout is DEFAULT_TIMEOUT else timeout
        limits = self._limits
        if limits is not None:
            req.max_body, req.max_head, req.max_headers = limits
        if max_body is not None:
            req.max_body = max_body
        if session is not None:
            req.session = session
            req.origin = (method, url, body, headers, follow, history)
        if target.idempotent:
            req.retry = True
            if target.head:
                req.head = True
        self.requests += 1
        target.pool.submit(req)
        return req

    def get(self, url: str, **kw: Any) -> Deferred[FastResponse]:
        """
        ``request(b"GET", url, **kw)``.
        """
        return self.request(b"GET", url, **kw)

    def post(self, url: str, body: bytes | None = None, **kw: Any) -> Deferred[FastResponse]:
        """
        ``request(b"POST", url, body, **kw)``.
        """
        return self.request(b"POST", url, body, **kw)

    def head(self, url: str, **kw: Any) -> Deferred[FastResponse]:
        """
        ``request(b"HEAD", url, **kw)``.
        """
        return self.request(b"HEAD", url, **kw)

    def put(self, url: str, body: bytes | None = None, **kw: Any) -> Deferred[FastResponse]:
        """
        ``request(b"PUT", url, body, **kw)``.
        """
        return self.request(b"PUT", url, body, **kw)

    def patch(self, url: str, body: bytes | None = None, **kw: Any) -> Deferred[FastResponse]:
        """
        ``request(b"PATCH", url, body, **kw)``.
        """
        return self.request(b"PATCH", url, body, **kw)

    def delete(self, url: str, **kw: Any) -> Deferred[FastResponse]:
        """
        ``request(b"DELETE", url, **kw)``.
        """
        return self.request(b"DELETE", url, **kw)

    def options(self, url: str, **kw: Any) -> Deferred[FastResponse]:
        """
        ``request(b"OPTIONS", url, **kw)``.
        """
        return self.request(b"OPTIONS", url, **kw)

    def _target(self, method: bytes | str, url: str) -> _Target:
        """
        Parse ``url`` and build the cached part of its requests.
        """
        if isinstance(method, str):
            method_bytes = method.encode("ascii")
        else:
            method_bytes = bytes(method)
        if not method_bytes or method_bytes.translate(None, _TOKEN_CHARS):
            raise HTTPError(f"invalid HTTP method {method!r}")
        if not isinstance(url, str):
            raise HTTPError(f"URL must be a str, not {type(url).__name__}")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "https":
            tls = True
        elif scheme == "http":
            tls = False
        else:
            raise HTTPError(f"FastHTTPClient only takes http:// and https:// URLs: {url!r}")
        if parts.username is not None or parts.password is not None:
            raise HTTPError(
                f"credentials in the URL are not supported; send an Authorization header: {url}"
            )
        try:
            host = parts.hostname
            port = parts.port or (443 if tls else 80)
        except ValueError as exc:
            raise HTTPError(f"invalid URL {url!r}: {exc}") from None
        if not host:
            raise HTTPError(f"URL has no host: {url!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        target_bytes = target.encode("utf-8")
        if not target_bytes.isascii():
            target_bytes = b"".join(
                bytes([c]) if c < 128 else b"%%%02X" % c for c in target_bytes
            )
        if any(c in target_bytes for c in (b" ", b"\r", b"\n", b"\t", b"\x00")):
            raise HTTPError(f"URL contains whitespace or control characters: {url!r}")
        host_part = f"[{host}]" if ":" in host else host
        address = f"{host_part}:{port}"
        host_header = host_part if port == (443 if tls else 80) else address
        key = (host, port, tls)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = HostPool(self, host, port, address, self._tls() if tls else None)
        made = _Target(
            pool,
            method_bytes,
            method_bytes + b" " + target_bytes + b" HTTP/1.1\r\n",
            b"Host: " + host_header.encode("idna") + b"\r\n",
            parts.path or "/",
        )
        targets = self._targets
        if len(targets) >= _TARGET_CACHE_SIZE:
            targets.clear()
        targets[(method, url)] = made
        return made

    def _tls(self) -> ssl.SSLContext:
        """
        The client's TLS context (made now, verifying against the system's
        trust store, if none was given).
        """
        context = self.tls_context
        if context is None:
            from octtwisted._http.tls import ssl_context

            context = self.tls_context = ssl_context()
        return context

    @staticmethod
    def _build(target: _Target, body: bytes | None, headers: HeadersArg) -> bytes:
        """
        The request bytes when there is a body or extra headers.
        """
        lines = [target.line]
        host = agent = True
        if headers is not None:
            items = headers.items() if isinstance(headers, Mapping) else headers
            for name, value in items:
                name_b = name.encode("latin-1") if isinstance(name, str) else bytes(name)
                if isinstance(value, str):
                    value_b = value.encode("latin-1")
                elif isinstance(value, (bytes, bytearray)):
                    value_b = bytes(value)
                else:
                    value_b = str(value).encode("latin-1")
                if not name_b or any(c in name_b for c in b" :\r\n\x00") or any(
                    c in value_b for c in b"\r\n\x00"
                ):
                    raise ValueError(f"invalid header {name!r}: {value!r}")
                lower = name_b.lower()
                if lower == b"content-length":
                    continue
                if lower == b"host":
                    host = False
                elif lower == b"user-agent":
                    agent = False
                lines.append(name_b + b": " + value_b + b"\r\n")
        if host:
            lines.insert(1, target.host_line)
        if agent:
            lines.append(b"User-Agent: oct-twisted\r\n")
        if body is not None:
            lines.append(b"Content-Length: %d\r\n\r\n" % len(body))
            lines.append(body)
        elif target.method in _BODY_METHODS:
            lines.append(b"Content-Length: 0\r\n\r\n")
        else:
            lines.append(b"\r\n")
        return b"".join(lines)

    # -- closing ----------------------------------------------------------------

    def close(self) -> Deferred[None]:
        """
        Fail every queued and in-flight request with :class:`ClientClosed`,
        close every connection, and refuse new requests. The result fires
        once every connection is closed.
        """
        self.closed = True
        waits: list[Deferred[None]] = []
        failed: list[Request] = []
        for pool in list(self._pools.values()):
            while pool.waiting:
                req = pool.waiting.popleft()
                pool.unqueue(req)
                failed.append(req)
            for conn in list(pool.conns):
                waits.append(conn.when_lost())
                held = conn.req
                if held is not None:
                    conn.req = None
                    held.conn = None
                    failed.append(held)
                    conn.abort()
                elif conn.connected and not conn.dead:
                    conn.dead = True
                    conn.transport.loseConnection()
                else:
                    conn.abort()
        self._pools.clear()
        self._targets.clear()
        for req in failed:
            req.errback(ClientClosed("request abandoned: FastHTTPClient.close() was called"))
        return defer.gatherResults(waits).addCallback(lambda _: None)

