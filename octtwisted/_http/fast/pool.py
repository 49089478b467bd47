"""
:class:`HostPool`: the connections to one ``(host, port)`` (and scheme),
and the requests waiting for one. It is the
:class:`~octtwisted._http.fast.connection.Pool` its connections report to,
and it knows its client as a
:class:`~octtwisted._http.fast.connection.Client`.
"""

from __future__ import annotations

import errno
import ssl
from collections import deque

from twisted.internet.error import ConnectBindError
from twisted.python.failure import Failure

from octtwisted._http.fast import descriptors
from octtwisted._http.fast.connection import Client, Connection, ConnectionFactory, Request
from octtwisted._http.fast.errors import ResponseTimeout
from octtwisted._http.fast.tlsconn import TLSConnection


class HostPool:
    """
    The connections to one ``(host, port)`` and the requests waiting for
    one.
    """

    __slots__ = (
        "client", "reactor", "host", "port", "address", "limit", "idle", "waiting", "total", "conns",
        "tls", "server_hostname", "tls_session", "conn_class",
    )

    def __init__(
        self,
        client: Client,
        host: str,
        port: int,
        address: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """
        :param tls: the client's TLS context for an ``https://`` pool;
            ``None`` for plain HTTP.
        """
        self.client = client
        self.reactor = client.reactor
        self.host = host
        self.port = port
        self.address = address
        self.limit = client.connections_per_host
        self.idle: list[Connection] = []
        self.waiting: deque[Request] = deque()
        #: Connections open or opening.
        self.total = 0
        self.conns: set[Connection] = set()
        #: TLS: the context, the name sent as SNI and checked against the
        #: certificate, and the session the last handshake gave (offered
        #: again when a new connection is opened, for resumption).
        self.tls = tls
        self.server_hostname = host
        self.tls_session: ssl.SSLSession | None = None
        if tls is not None:
            self.conn_class: type[Connection] = TLSConnection
        else:
            self.conn_class = Connection

    def submit(self, req: Request) -> None:
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

    def open(self, req: Request, delay: float | None) -> None:
        """
        Open a new connection for ``req``.
        """
        self.total += 1
        self.client.connections_opened += 1
        conn = self.conn_class(self)
        self.conns.add(conn)
        conn.send(req, delay)
        if not descriptors.DESCRIPTORS.take():
            # No descriptor to spare (see .descriptors): fail as a connection
            # the system refused with EMFILE does, on the next turn.
            conn.counted = False
            refused = Failure(ConnectBindError(errno.EMFILE, "Too many open files"))
            self.reactor.callLater(0, conn.connect_failed, refused)
            return
        conn.connector = self.reactor.connectTCP(
            self.host, self.port, ConnectionFactory(conn), timeout=self.client.connect_timeout
        )

    def release(self, conn: Connection) -> None:
        """
        ``conn`` finished a response and may be reused.
        """
        found = self.next_waiting()
        if found is None:
            self.idle.append(conn)
        else:
            conn.send(*found)

    def next_waiting(self) -> tuple[Request, float | None] | None:
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

    def dequeued(self, req: Request) -> float | None:
        """
        Stop a dequeued request's queue timer; return its time left (a
        request whose time is up has been failed, and gets ``0.0``).
        """
        qtimer = req.qtimer
        if qtimer is None:
            return None
        req.qtimer = None
        qtimer.cancel()
        delay: float = req.deadline - self.reactor.seconds()
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

    def forget(self, conn: Connection) -> None:
        """
        ``conn`` is closed (or never opened): free its place.
        """
        if conn in self.conns:
            self.conns.discard(conn)
            self.total -= 1
            if conn.counted:
                conn.counted = False
                descriptors.DESCRIPTORS.release()
            if conn in self.idle:
                self.idle.remove(conn)

    def retire(self, conn: Connection) -> None:
        """
        ``conn`` is closing: hand it no more requests.
        """
        if conn in self.idle:
            self.idle.remove(conn)

    def unqueue(self, req: Request) -> None:
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

    def queue_timed_out(self, req: Request) -> None:
        req.qtimer = None
        if req.queued_in is self:
            self.unqueue(req)
            req.errback(ResponseTimeout(req.timeout))  # type: ignore[arg-type]
