"""
One HTTP/1.1 connection (:class:`Connection`) and the request object it
carries (:class:`Request`).

A connection sends one request at a time, parses the response with
httptools (llhttp), and hands itself back to its pool when the response
allows keep-alive. :mod:`.tlsconn` subclasses it for ``https://``.

This module is the bottom of the request path: it imports none of the
modules above it. What it uses of them is said here, as protocols that
they fulfil: :class:`Pool` (a :class:`~octtwisted._http.fast.pool.HostPool`),
:class:`Client` (a :class:`~octtwisted._http.fast.client.FastHTTPClient`)
and :class:`Session` (a :class:`~octtwisted._http.fast.session.FastSession`).
They are types only: no call goes through them.
"""

from __future__ import annotations

import ssl
import typing
from typing import Any, Callable

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser
from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.python.failure import Failure

from octtwisted._core.httplimits import (
    DEFAULT_MAX_RESPONSE_BODY,
    DEFAULT_MAX_RESPONSE_HEAD,
    DEFAULT_MAX_RESPONSE_HEADERS,
)
from octtwisted._http.fast.errors import (
    ConnectError,
    ConnectionLost,
    ProtocolError,
    ResponseTimeout,
    ResponseTooLarge,
    connect_reason,
    one_line,
)
from octtwisted._http.fast.response import FastResponse, header_count, parse_head
from octtwisted._http.fast.sockwrite import socket_writer


class Client(typing.Protocol):
    """
    What the connections and the pools of a client read of it (and count
    in it): a :class:`~octtwisted._http.fast.client.FastHTTPClient`.
    """

    reactor: Any
    connections_per_host: int
    connect_timeout: float
    #: Connections attempted so far (a pool counts those it opens).
    connections_opened: int
    #: The client was closed: nothing is sent again, nothing is opened.
    closed: bool


class Pool(typing.Protocol):
    """
    What a connection (and a request's canceller) uses of the pool the
    connection belongs to: a :class:`~octtwisted._http.fast.pool.HostPool`.
    """

    client: Client
    reactor: Any
    #: ``host:port``, for error messages.
    address: str
    #: TLS (for :mod:`.tlsconn`): the context, the name sent as SNI and
    #: checked, and the last session (offered again to a new connection).
    tls: ssl.SSLContext | None
    server_hostname: str
    tls_session: ssl.SSLSession | None

    def open(self, req: Request, delay: float | None) -> None:
        """Open a new connection for ``req``."""

    def release(self, conn: Connection) -> None:
        """``conn`` finished a response and may be reused."""

    def retire(self, conn: Connection) -> None:
        """``conn`` is closing: hand it no more requests."""

    def forget(self, conn: Connection) -> None:
        """``conn`` is closed (or never opened): free its place."""

    def pump(self) -> None:
        """Open connections for queued requests while there is room."""

    def unqueue(self, req: Request) -> None:
        """Take a waiting request out of the queue."""


class Session(typing.Protocol):
    """
    What sees a request's response before its caller: a
    :class:`~octtwisted._http.fast.session.FastSession`.
    """

    def received(self, req: Request, response: FastResponse) -> bool:
        """
        Act on ``response`` (cookies, decoding, redirects); True if ``req``
        has been (or will be) fired there.
        """


class _AfterTheEnd(Exception):
    """
    Raised by the parser's callback when a second response begins in the
    same read as a complete one.
    """


class _OverLimit(Exception):
    """
    Raised by the parser's callback when a response passes one of its
    request's limits; carries the :class:`ResponseTooLarge` to fail with.
    """

    def __init__(self, what: str, limit: int, key: str) -> None:
        self.what, self.limit, self.key = what, limit, key


class Request(Deferred):  # type: ignore[type-arg]
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
    conn: Connection | None = None
    #: The pool whose queue holds the request, while it is queued.
    queued_in: Pool | None = None
    #: When a queued request times out (reactor seconds).
    deadline: float = 0.0
    #: The timer of a queued request.
    qtimer: Any = None
    #: The session that sent it (cookies, redirects, decoding), if any.
    session: Session | None = None
    #: For a session: what to send again on a redirect (method, URL,
    #: headers, redirects left, responses so far).
    origin: Any = None
    #: The most bytes of body, of head (status line and headers, interim
    #: responses included), and header fields its response may have.
    max_body: int = DEFAULT_MAX_RESPONSE_BODY
    max_head: int = DEFAULT_MAX_RESPONSE_HEAD
    max_headers: int = DEFAULT_MAX_RESPONSE_HEADERS


def cancel_request(req: Request) -> None:
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


class ConnectionFactory(ClientFactory):
    """
    Hands one prepared :class:`Connection` to ``connectTCP`` and reports a
    failed connection attempt to it.
    """

    noisy = False

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        #: The connection attempt's transport, until it fails.
        self.attempt: Any = None

    def startedConnecting(self, connector: Any) -> None:
        self.attempt = connector.transport

    def buildProtocol(self, addr: Any) -> Connection:
        self.attempt = None
        return self.conn

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        attempt, self.attempt = self.attempt, None
        if attempt is not None:
            # Twisted's failed attempt still points its doRead and doWrite
            # at its own doConnect: a reference cycle, which only a full
            # collection frees, and the turret makes one a minute (see
            # _firing/gcpolicy.py). A storm of refused connections piled
            # up about 900 bytes each, 8 MiB/s. Break it.
            attempt.doRead = attempt.doWrite = _no_op
        self.conn.connect_failed(reason)


def _no_op(*args: Any, **kwargs: Any) -> None:
    """What a failed connection attempt's doRead and doWrite become."""


class Connection(Protocol):
    """
    One HTTP/1.1 connection: sends one request at a time and parses the
    response with httptools.
    """

    #: The TCP transport (typed loosely: Twisted's ITransport stubs lack
    #: the TCP methods used here).
    transport: Any

    #: Writes request bytes once the connection can carry them (the
    #: socket's writer for plain HTTP, see :mod:`.sockwrite`; set once the TLS handshake is
    #: done for HTTPS); ``None`` until then.
    write: Callable[[bytes], None] | None = None
    #: Counted in the process's descriptor budget (see :mod:`.descriptors`)
    #: until its pool forgets it.
    counted: bool = True

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.parser = HttpResponseParser(self)
        self.connector: Any = None
        #: The request in flight (or waiting for the connection to open).
        self.req: Request | None = None
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
        # Bytes of head (the reads that held it) and of body so far, and
        # the request's limits on them (copied from it at send: the
        # parser's callbacks read them on every chunk).
        self.head_size = 0
        self.body_size = 0
        self.max_body = DEFAULT_MAX_RESPONSE_BODY
        self.max_head = DEFAULT_MAX_RESPONSE_HEAD

    # -- sending -----------------------------------------------------------

    def send(self, req: Request, delay: float | None) -> None:
        """
        Make ``req`` this connection's request and write it (now if the
        connection is open, else once it opens); its timeout runs from
        now for ``delay`` seconds.
        """
        self.req = req
        req.conn = self
        self.got_bytes = False
        self.in_body = False
        self.head_size = self.body_size = 0
        self.max_body = req.max_body
        self.max_head = req.max_head
        if delay is not None:
            timer = self.timer
            if timer is None:
                self.timer = self.pool.reactor.callLater(delay, self.timed_out)
            else:
                timer.reset(delay)
            self.armed = True
        else:
            self.armed = False
        write = self.write
        if write is not None:
            write(req.data)

    def connectionMade(self) -> None:
        self.connector = None
        transport = self.transport
        no_delay(transport)
        self.write = write = socket_writer(transport)
        req = self.req
        if req is not None:
            write(req.data)

    # -- parser callbacks ---------------------------------------------------

    # There is deliberately no on_header: a Python call per header field
    # costs more than splitting the raw header block later, if ever.

    def on_headers_complete(self) -> None:
        self.status = status = self.parser.get_status_code()
        self.in_body = True
        if status >= 200:
            req = self.req
            if req is not None and self.head_size > 3 * req.max_headers:
                # Enough bytes for that many fields (the shortest is
                # "a:\n"): count them, once.
                if header_count(b"".join(self.raw)) > req.max_headers:
                    raise _OverLimit("head", req.max_headers, "max_response_headers")
            if req is not None and req.head:
                # llhttp cannot be told that a HEAD response has no body;
                # the parser is replaced once this response is delivered.
                self.head_done = True

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)
        size = self.body_size = self.body_size + len(chunk)
        if size > self.max_body:
            raise _OverLimit("body", self.max_body, "max_response_body")

    def on_message_begin(self) -> None:
        if self.complete:
            # A response is complete at its end: bytes after it in the same
            # read (a server's unsolicited 408 on an idle connection) belong
            # to no request. Stop parsing; the connection is closed.
            raise _AfterTheEnd()

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

    def http_received(self, data: bytes) -> None:
        """
        Response bytes (decrypted, for HTTPS) for the request in flight.
        """
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
            self.head_size += len(data)
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            problem = "unexpected protocol upgrade"
        except HttpParserError as exc:
            over = exc.__context__
            if isinstance(over, _OverLimit):
                self.too_large(req, over.what, over.limit, over.key)
                return
            problem = one_line(str(exc)) or type(exc).__name__
        else:
            if self.complete or self.head_done:
                self.finish(req)
            elif not self.in_body and self.head_size > self.max_head:
                self.too_large(req, "head", self.max_head, "max_response_head")
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

    dataReceived = http_received

    def too_large(self, req: Request, what: str, limit: int, key: str) -> None:
        """
        Give ``req`` up: its response passed a limit. What was read is
        dropped and the connection closed (the rest of the response is
        never read).
        """
        self.req = None
        req.conn = None
        self.body = []
        self.raw = []
        self.abort()
        req.errback(ResponseTooLarge(self.pool.address, what, limit, key))

    def finish(self, req: Request) -> None:
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
        session = req.session
        if session is not None and session.received(req, response):
            return
        req.callback(response)

    def head_keep_alive(self, head: bytes) -> bool:
        """
        Whether a HEAD response the parser did not finish allows reuse.
        """
        connection = b""
        for name, value in parse_head(head):
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
        self.write = None
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
        for name, _ in parse_head(b"".join(self.raw)):
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
            req.errback(ConnectError(pool.address, connect_reason(reason, pool.client.connect_timeout)))
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


def no_delay(transport: Any) -> None:
    """
    Set ``TCP_NODELAY`` where the transport has it (in-memory transports
    of tests and :mod:`octtwisted.testing` do not).
    """
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is not None:
        set_no_delay(True)
