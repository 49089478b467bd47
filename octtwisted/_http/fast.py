"""
A lean HTTP/1.1 keep-alive client for load-test scripts.

:class:`FastHTTPClient` speaks plain ``http://`` straight on Twisted's
protocol layer and parses responses with the ``httptools`` C parser
(llhttp). It exists because per-request CPU is what limits how hard one
turret process can push: treq/Agent spends several hundred microseconds of
Python per request, this client a small fraction of that. It is meant for
hammering a service with simple requests; for TLS, redirects, cookies or
streaming bodies use treq (``self.http``).

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
  endpoint) and have ``TCP_NODELAY`` set;
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

from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Mapping, Union
from urllib.parse import urlsplit

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser
from twisted.internet import defer, error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.python.failure import Failure

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

HeadersArg = Union[Mapping[Any, Any], Iterable[tuple[Any, Any]], None]

#: Marks "use the client's default timeout" (``None`` means no timeout).
_DEFAULT: Any = object()

#: Methods whose request may be sent a second time (see the module doc).
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS"})

#: Methods that get ``Content-Length: 0`` when sent without a body.
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})

#: The characters an HTTP method (a "token") may have.
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#: Cached request targets per client; the cache is emptied when it is full
#: (scripts that make every URL unique must not grow it without end).
_TARGET_CACHE_SIZE = 4096


# --------------------------------------------------------------------------
# Results and errors
# --------------------------------------------------------------------------


def _parse_head(head: bytes) -> list[tuple[bytes, bytes]]:
    """
    The header fields of the final response at the start of ``head`` (raw
    bytes the parser has already accepted, possibly followed by body
    bytes, possibly preceded by interim 1xx responses), names lowercased.
    """
    start = 0
    while True:
        end = head.find(b"\r\n\r\n", start)
        if end < 0:
            end = len(head)
        block = head[start:end]
        status_line, _, fields = block.partition(b"\r\n")
        code = status_line.split(None, 2)[1:2]
        if code and code[0][:1] == b"1" and code[0] != b"101" and end < len(head):
            start = end + 4
            continue
        break
    headers: list[tuple[bytes, bytes]] = []
    if not fields:
        return headers
    for line in fields.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and headers:
            # A folded continuation of the previous field.
            name, value = headers[-1]
            headers[-1] = (name, (value + b" " + line.strip()).strip())
            continue
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return headers


class FastResponse:
    """
    A complete HTTP response.

    :ivar code: the status code.
    :ivar headers: ``(name, value)`` pairs in the order received, names
        lowercased, both ``bytes``. (Responses read from the network keep
        the raw header block and split it on first use, since most load
        scripts only look at the status and body.)
    :ivar body: the whole body (``b""`` when there is none).

    ``FastResponse(code, headers, body)`` makes one by hand (for fakes);
    the client passes ``headers=None`` and the raw header block instead.
    """

    __slots__ = ("code", "body", "_headers", "_head")

    def __init__(
        self,
        code: int,
        headers: list[tuple[bytes, bytes]] | None,
        body: bytes,
        raw_head: bytes | None = None,
    ) -> None:
        self.code = code
        self.body = body
        self._headers = headers
        self._head = raw_head

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = self._headers
        if headers is None:
            head, self._head = self._head, None
            headers = self._headers = _parse_head(head) if head else []
        return headers

    def header(self, name: bytes | str) -> bytes | None:
        """
        The first value of header ``name`` (any case), or ``None``.
        """
        if isinstance(name, str):
            name = name.encode("latin-1")
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def text(self) -> str:
        """
        The body decoded as UTF-8 (undecodable bytes become U+FFFD).
        """
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<FastResponse {self.code} ({len(self.body)} bytes)>"


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


class ClientClosed(HTTPError):
    """
    The request was still queued or in flight when
    :meth:`FastHTTPClient.close` was called, or was made after it.
    """


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _connect_reason(failure: Failure, connect_timeout: float) -> str:
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
    return _one_line(f"cannot connect ({failure.getErrorMessage()})")


# --------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------


class _Request(Deferred):  # type: ignore[type-arg]
    """
    The Deferred handed to the caller, also carrying the request's state so
    that a request costs one object.

    Class attributes are the defaults; only what differs is set per
    instance.
    """

    #: The bytes to write (request line, headers, body).
    data: bytes = b""
    #: The timeout in seconds, or ``None``.
    timeout: float | None = None
    #: May still be retried on a new connection (idempotent, not yet retried).
    retry: bool = False
    #: The request is a HEAD (its response has no body whatever it says).
    head: bool = False
    #: The connection the request was given to, while it is there.
    conn: _Connection | None = None
    #: The pool whose queue holds the request, while it is queued.
    queued_in: _HostPool | None = None
    #: When a queued request times out (reactor seconds).
    deadline: float = 0.0
    #: The timer of a queued request.
    qtimer: Any = None


def _cancel_request(req: _Request) -> None:
    """
    Canceller of every request's Deferred: close the connection it is on
    (it is never reused), or take it out of the queue. The Deferred then
    fails with ``CancelledError``.
    """
    conn = req.conn
    if conn is not None:
        req.conn = None
        conn.req = None
        conn.abort()
        return
    pool = req.queued_in
    if pool is not None:
        pool.unqueue(req)


class _Target:
    """
    What a ``(method, url)`` turns into, cached by the client.
    """

    __slots__ = ("pool", "method", "line", "host_line", "full", "idempotent", "head")

    def __init__(self, pool: _HostPool, method: bytes, line: bytes, host_line: bytes) -> None:
        self.pool = pool
        self.method = method
        #: ``GET /path HTTP/1.1\r\n``
        self.line = line
        #: ``Host: example.com:8080\r\n``
        self.host_line = host_line
        length = b"Content-Length: 0\r\n" if method in _BODY_METHODS else b""
        #: The whole request when there is no body and no extra header.
        self.full = line + host_line + b"User-Agent: oct-twisted\r\n" + length + b"\r\n"
        self.idempotent = method in _IDEMPOTENT
        self.head = method == b"HEAD"


class _ConnectionFactory(ClientFactory):
    """
    Hands one prepared :class:`_Connection` to ``connectTCP`` and reports a
    failed connection attempt to it.
    """

    noisy = False

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn

    def buildProtocol(self, addr: Any) -> _Connection:
        return self.conn

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.conn.connect_failed(reason)


class _Connection(Protocol):
    """
    One HTTP/1.1 connection: sends one request at a time and parses the
    response with httptools.
    """

    def __init__(self, pool: _HostPool) -> None:
        self.pool = pool
        self.parser = HttpResponseParser(self)
        self.connector: Any = None
        #: The request in flight (or waiting for the connection to open).
        self.req: _Request | None = None
        #: Responses completed on this connection (> 0: it is a reused one).
        self.responses = 0
        #: The shared per-connection timeout timer, and whether it applies
        #: to the request in flight.
        self.timer: Any = None
        self.armed = False
        #: Closing: never to be handed another request.
        self.dead = False
        self.lost_waiters: list[Deferred[None]] | None = None
        # Per-response state: the chunks that held the status line and
        # headers, the body chunks, and where the response is at.
        self.raw: list[bytes] = []
        self.body: list[bytes] = []
        self.status = 0
        self.got_bytes = False
        self.in_body = False
        self.complete = False
        self.keep_alive = False
        self.head_done = False

    # -- sending -----------------------------------------------------------

    def send(self, req: _Request, delay: float | None) -> None:
        """
        Make ``req`` this connection's request and write it (now if the
        connection is open, else once it opens); its timeout runs from
        now for ``delay`` seconds.
        """
        self.req = req
        req.conn = self
        self.got_bytes = False
        self.in_body = False
        if delay is not None:
            timer = self.timer
            if timer is None:
                self.timer = self.pool.reactor.callLater(delay, self.timed_out)
            else:
                timer.reset(delay)
            self.armed = True
        else:
            self.armed = False
        if self.connected:
            self.transport.write(req.data)

    def connectionMade(self) -> None:
        self.connector = None
        self.transport.setTcpNoDelay(True)
        req = self.req
        if req is not None:
            self.transport.write(req.data)

    # -- parser callbacks ---------------------------------------------------

    # There is deliberately no on_header: a Python call per header field
    # costs more than splitting the raw header block later, if ever.

    def on_headers_complete(self) -> None:
        self.status = status = self.parser.get_status_code()
        self.in_body = True
        if status >= 200:
            req = self.req
            if req is not None and req.head:
                # llhttp cannot be told that a HEAD response has no body;
                # the parser is replaced once this response is delivered.
                self.head_done = True

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.status < 200:
            # An interim (1xx) response: the real one follows.
            self.in_body = False
            return
        # Must be asked now: llhttp forgets the flags behind it once this
        # callback returns.
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True

    # -- receiving ----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        req = self.req
        if req is None:
            # Bytes nobody asked for (e.g. a 408 sent to an idle
            # connection): this connection cannot be trusted any more.
            if not self.dead:
                self.dead = True
                self.pool.retire(self)
                self.transport.loseConnection()
            return
        self.got_bytes = True
        if not self.in_body:
            self.raw.append(data)
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            problem = "unexpected protocol upgrade"
        except HttpParserError as exc:
            problem = _one_line(str(exc)) or type(exc).__name__
        else:
            if self.complete or self.head_done:
                self.finish(req)
            return
        if self.complete or self.head_done:
            # A good response followed by junk: deliver it, drop the
            # connection.
            self.keep_alive = False
            self.finish(req)
            return
        self.req = None
        req.conn = None
        self.abort()
        req.errback(ProtocolError(self.pool.address, problem))

    def finish(self, req: _Request) -> None:
        """
        Deliver the completed response, then reuse or close the connection.
        """
        body = self.body
        if body:
            payload = b"".join(body) if len(body) > 1 else body[0]
            self.body = []
        else:
            payload = b""
        raw = self.raw
        head = raw[0] if len(raw) == 1 else b"".join(raw)
        self.raw = []
        if len(head) > 8192:
            # Do not keep a large first chunk of body alive in the response.
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                head = head[: end + 4]
        if self.head_done:
            self.head_done = False
            if not self.complete:
                self.keep_alive = self.head_keep_alive(head)
                self.parser = HttpResponseParser(self)
        response = FastResponse(self.status, None, payload, head)
        self.complete = False
        self.req = None
        req.conn = None
        self.responses += 1
        if self.keep_alive and not self.dead:
            self.pool.release(self)
        elif not self.dead:
            self.dead = True
            self.transport.loseConnection()
        req.callback(response)

    def head_keep_alive(self, head: bytes) -> bool:
        """
        Whether a HEAD response the parser did not finish allows reuse.
        """
        connection = b""
        for name, value in _parse_head(head):
            if name == b"connection":
                connection = value.lower()
        if self.parser.get_http_version() == "1.1":
            return b"close" not in connection
        return b"keep-alive" in connection

    def timed_out(self) -> None:
        self.timer = None
        req = self.req
        if req is None or not self.armed:
            return
        self.req = None
        req.conn = None
        self.abort()
        req.errback(ResponseTimeout(req.timeout))  # type: ignore[arg-type]

    # -- closing --------------------------------------------------------------

    def abort(self) -> None:
        """
        Close the connection now (or stop opening it); it is never reused.
        """
        self.dead = True
        if self.connected:
            self.transport.abortConnection()
        elif self.connector is not None and self.connector.state == "connecting":
            self.connector.stopConnecting()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = 0
        self.dead = True
        remaining = self.stop_timer()
        pool = self.pool
        pool.forget(self)
        req = self.req
        if req is not None:
            self.req = None
            req.conn = None
            if (
                self.in_body
                and not req.head
                and reason.check(error.ConnectionDone)
                and self.body_until_close()
            ):
                # The body was delimited by the connection closing.
                self.keep_alive = False
                self.complete = True
                self.req = req
                req.conn = self
                pool.pump()
                self.finish(req)
            elif not self.got_bytes and self.responses and req.retry and not pool.client.closed:
                # A reused connection the server had closed: once more, on
                # a fresh connection.
                req.retry = False
                pool.open(req, remaining)
            else:
                pool.pump()
                req.errback(ConnectionLost(pool.address))
        else:
            pool.pump()
        self.parser = None  # type: ignore[assignment]
        self.fire_lost_waiters()

    def body_until_close(self) -> bool:
        """
        Whether the response in progress has neither a length nor chunked
        encoding, so that its body ends when the connection does.
        """
        if self.status in (204, 304) or self.status < 200:
            return False
        for name, _ in _parse_head(b"".join(self.raw)):
            if name == b"content-length" or name == b"transfer-encoding":
                return False
        return True

    def connect_failed(self, reason: Failure) -> None:
        self.connector = None
        self.dead = True
        self.stop_timer()
        pool = self.pool
        pool.forget(self)
        req = self.req
        self.req = None
        pool.pump()
        if req is not None:
            req.conn = None
            req.errback(ConnectError(pool.address, _connect_reason(reason, pool.client.connect_timeout)))
        self.parser = None  # type: ignore[assignment]
        self.fire_lost_waiters()

    def stop_timer(self) -> float | None:
        """
        Cancel the timeout timer; return the seconds it had left if it was
        armed for the request in flight.
        """
        timer, self.timer = self.timer, None
        if timer is None:
            return None
        remaining = None
        if self.armed:
            remaining = max(0.0, timer.getTime() - self.pool.reactor.seconds())
        timer.cancel()
        return remaining

    def fire_lost_waiters(self) -> None:
        waiters, self.lost_waiters = self.lost_waiters, None
        for waiter in waiters or ():
            waiter.callback(None)

    def when_lost(self) -> Deferred[None]:
        """
        A Deferred that fires once this connection is closed.
        """
        waiter: Deferred[None] = Deferred()
        if self.lost_waiters is None:
            self.lost_waiters = []
        self.lost_waiters.append(waiter)
        return waiter


class _HostPool:
    """
    The connections to one ``(host, port)`` and the requests waiting for
    one.
    """

    __slots__ = ("client", "reactor", "host", "port", "address", "limit", "idle", "waiting", "total", "conns")

    def __init__(self, client: FastHTTPClient, host: str, port: int, address: str) -> None:
        self.client = client
        self.reactor = client.reactor
        self.host = host
        self.port = port
        self.address = address
        self.limit = client.connections_per_host
        self.idle: list[_Connection] = []
        self.waiting: deque[_Request] = deque()
        #: Connections open or opening.
        self.total = 0
        self.conns: set[_Connection] = set()

    def submit(self, req: _Request) -> None:
        """
        Send ``req`` on an idle connection, a new one, or queue it.
        """
        idle = self.idle
        if idle:
            idle.pop().send(req, req.timeout)
        elif self.total < self.limit:
            self.open(req, req.timeout)
        else:
            timeout = req.timeout
            req.queued_in = self
            if timeout is not None:
                req.deadline = self.reactor.seconds() + timeout
                req.qtimer = self.reactor.callLater(timeout, self.queue_timed_out, req)
            self.waiting.append(req)

    def open(self, req: _Request, delay: float | None) -> None:
        """
        Open a new connection for ``req``.
        """
        self.total += 1
        self.client.connections_opened += 1
        conn = _Connection(self)
        self.conns.add(conn)
        conn.send(req, delay)
        conn.connector = self.reactor.connectTCP(
            self.host, self.port, _ConnectionFactory(conn), timeout=self.client.connect_timeout
        )

    def release(self, conn: _Connection) -> None:
        """
        ``conn`` finished a response and may be reused.
        """
        found = self.next_waiting()
        if found is None:
            self.idle.append(conn)
        else:
            conn.send(*found)

    def next_waiting(self) -> tuple[_Request, float | None] | None:
        """
        The next queued request whose time is not up, with its time left;
        None when the queue is empty.
        """
        waiting = self.waiting
        while waiting:
            req = waiting.popleft()
            req.queued_in = None
            delay = self.dequeued(req)
            if delay is None or delay > 0.0:
                return req, delay
        return None

    def dequeued(self, req: _Request) -> float | None:
        """
        Stop a dequeued request's queue timer; return its time left (a
        request whose time is up has been failed, and gets ``0.0``).
        """
        qtimer = req.qtimer
        if qtimer is None:
            return None
        req.qtimer = None
        qtimer.cancel()
        delay = req.deadline - self.reactor.seconds()
        if delay <= 0.0:
            req.errback(ResponseTimeout(req.timeout))  # type: ignore[arg-type]
            return 0.0
        return delay

    def pump(self) -> None:
        """
        Open connections for queued requests while there is room.
        """
        while self.total < self.limit and not self.client.closed:
            found = self.next_waiting()
            if found is None:
                return
            self.open(*found)

    def forget(self, conn: _Connection) -> None:
        """
        ``conn`` is closed (or never opened): free its place.
        """
        if conn in self.conns:
            self.conns.discard(conn)
            self.total -= 1
            if conn in self.idle:
                self.idle.remove(conn)

    def retire(self, conn: _Connection) -> None:
        """
        ``conn`` is closing: hand it no more requests.
        """
        if conn in self.idle:
            self.idle.remove(conn)

    def unqueue(self, req: _Request) -> None:
        """
        Take a waiting request out of the queue (cancelled or timed out).
        """
        req.queued_in = None
        qtimer, req.qtimer = req.qtimer, None
        if qtimer is not None and qtimer.active():
            qtimer.cancel()
        try:
            self.waiting.remove(req)
        except ValueError:
            pass

    def queue_timed_out(self, req: _Request) -> None:
        req.qtimer = None
        if req.queued_in is self:
            self.unqueue(req)
            req.errback(ResponseTimeout(req.timeout))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------


class FastHTTPClient:
    """
    A pooling HTTP/1.1 keep-alive client for plain ``http://`` URLs.

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

    :ivar requests: requests accepted so far.
    :ivar connections_opened: connections attempted so far.
    """

    def __init__(
        self,
        reactor: Any,
        connections_per_host: int = 100,
        timeout: float | None = 30.0,
        connect_timeout: float = 10.0,
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
        self._pools: dict[tuple[str, int], _HostPool] = {}
        self._targets: dict[tuple[bytes | str, str], _Target] = {}

    # -- making requests ------------------------------------------------------

    def request(
        self,
        method: bytes | str,
        url: str,
        body: bytes | None = None,
        headers: HeadersArg = None,
        timeout: float | None = _DEFAULT,
    ) -> Deferred[FastResponse]:
        """
        Send one request; the result fires with a :class:`FastResponse` once
        the whole body has been read.

        :param method: e.g. ``b"GET"`` or ``"POST"``.
        :param url: an ``http://`` URL.
        :param body: the request body; ``Content-Length`` is set from it.
        :param headers: extra headers, as a dict or ``(name, value)`` pairs
            (``str`` or ``bytes``); a ``Host`` or ``User-Agent`` given here
            replaces the default one, a ``Content-Length`` is ignored.
        :param timeout: seconds for the whole request, ``None`` for no
            timeout; the client's default if not given.

        The result fails with :class:`ConnectError`, :class:`ConnectionLost`,
        :class:`ResponseTimeout`, :class:`ProtocolError` or
        :class:`ClientClosed`, or at once with :class:`HTTPError` for a URL
        it cannot use (``https://`` included). Cancelling it closes the
        connection the request was on. This method never raises.
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
        req = _Request(_cancel_request)
        req.data = data
        req.timeout = self.timeout if timeout is _DEFAULT else timeout
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
            raise HTTPError(
                f"FastHTTPClient does not do TLS; use treq (self.http) for https:// URLs: {url}"
            )
        if scheme != "http":
            raise HTTPError(f"FastHTTPClient only takes http:// URLs: {url!r}")
        if parts.username is not None or parts.password is not None:
            raise HTTPError(
                f"credentials in the URL are not supported; send an Authorization header: {url}"
            )
        try:
            host = parts.hostname
            port = parts.port or 80
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
        host_header = host_part if port == 80 else address
        key = (host, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _HostPool(self, host, port, address)
        made = _Target(
            pool,
            method_bytes,
            method_bytes + b" " + target_bytes + b" HTTP/1.1\r\n",
            b"Host: " + host_header.encode("idna") + b"\r\n",
        )
        targets = self._targets
        if len(targets) >= _TARGET_CACHE_SIZE:
            targets.clear()
        targets[(method, url)] = made
        return made

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
        failed: list[_Request] = []
        for pool in list(self._pools.values()):
            while pool.waiting:
                req = pool.waiting.popleft()
                pool.unqueue(req)
                failed.append(req)
            for conn in list(pool.conns):
                waits.append(conn.when_lost())
                req = conn.req
                if req is not None:
                    conn.req = None
                    req.conn = None
                    failed.append(req)
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
