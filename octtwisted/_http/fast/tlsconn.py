"""
:class:`TLSConnection`: an ``https://`` connection, TLS done with the
standard library's :class:`ssl.SSLObject` over two :class:`ssl.MemoryBIO`
buffers, under a plain Twisted TCP connection.

Why not Twisted's own TLS (``TLSMemoryBIOProtocol`` on pyOpenSSL)? Measured
on this project's machine, a keep-alive GET costs about 92 us of CPU over
Twisted's TLS and 52-71 us over the standard library's ``ssl`` (plain TCP:
32-36 us): pyOpenSSL pays a cffi round trip and Python bookkeeping per
record in each direction, ``SSLObject`` one C call. The HTTP side is the
same :class:`~octtwisted._http.fast.connection.Connection`; only the bytes
in and out go through here:

* the handshake starts as soon as TCP is up, with SNI and the
  certificate check on the pool's host name (``server_hostname``), ALPN
  ``http/1.1``, and the pool's last session offered for resumption;
* a request waits for the handshake and then goes out in one
  ``transport.write`` together with the handshake's last flight;
* each request is one ``SSLObject.write`` and one ``transport.write``
  (many small writes to a TLS connection cost many records);
* received bytes are decrypted in as few ``read`` calls as the records
  allow and handed to the HTTP parser at once.
"""

from __future__ import annotations

import ssl
from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from octtwisted._http.fast.connection import Connection, no_delay
from octtwisted._http.fast.errors import TLSError, one_line
from octtwisted._http.fast.sockwrite import socket_writer
from octtwisted._http.fast.tlserrors import from_ssl_error

#: How much one ``SSLObject.read`` may return.
_READ_SIZE = 262144


class TLSConnection(Connection):
    """
    One HTTP/1.1 connection over TLS (see the module doc).
    """

    sslobj: Any = None
    #: The handshake is over and its session has been given to the pool.
    session_saved = False

    def connectionMade(self) -> None:
        self.connector = None
        transport = self.transport
        no_delay(transport)
        self.tcp_write = socket_writer(transport)
        pool = self.pool
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        try:
            self.sslobj = pool.tls.wrap_bio(  # type: ignore[union-attr]
                self.incoming,
                self.outgoing,
                server_hostname=pool.server_hostname,
                session=pool.tls_session,
            )
        except (ssl.SSLError, ValueError) as exc:
            self.tls_failed(exc)
            return
        self.handshake()

    def handshake(self) -> None:
        """
        Push the handshake on; once it is done, send the waiting request.
        """
        sslobj = self.sslobj
        try:
            sslobj.do_handshake()
        except ssl.SSLWantReadError:
            out = self.outgoing
            if out.pending:
                self.tcp_write(out.read())
            return
        except (ssl.SSLError, ValueError) as exc:
            self.tls_failed(exc)
            return
        self.write = write = self.tls_write
        req = self.req
        if req is not None:
            write(req.data)
        else:
            out = self.outgoing
            if out.pending:
                self.tcp_write(out.read())
        if self.incoming.pending:
            self.dataReceived(b"")

    def tls_write(self, data: bytes) -> None:
        """
        Encrypt ``data`` and send it (with any TLS bytes waiting) in one
        write.
        """
        self.sslobj.write(data)
        self.tcp_write(self.outgoing.read())

    def dataReceived(self, data: bytes) -> None:
        incoming = self.incoming
        if data:
            incoming.write(data)
        if self.write is None:
            if self.sslobj is not None:
                self.handshake()
            return
        sslobj = self.sslobj
        read = sslobj.read
        chunks = []
        closing = False
        try:
            while True:
                plain = read(_READ_SIZE)
                if not plain:
                    closing = True
                    break
                chunks.append(plain)
                if not incoming.pending and not sslobj.pending():
                    break
        except ssl.SSLWantReadError:
            pass  # no whole record left
        except ssl.SSLZeroReturnError:
            closing = True
        except ssl.SSLError as exc:
            self.tls_failed(exc)
            return
        if len(chunks) == 1:
            plain = chunks[0]
        else:
            plain = b"".join(chunks)
        if not self.session_saved:
            # The first bytes after the handshake: by now a TLS 1.3 server
            # has sent its session tickets.
            self.session_saved = True
            session = sslobj.session
            if session is not None:
                self.pool.tls_session = session
        out = self.outgoing
        if out.pending:
            self.tcp_write(out.read())
        if plain:
            self.http_received(plain)
        if closing:
            self.close_notified()

    def close_notified(self) -> None:
        """
        The server sent close_notify: answer with ours and close (a server
        may wait for it before it closes TCP, which ends a body that runs
        until the connection closes).
        """
        if self.dead and not self.connected:
            return
        self.dead = True
        self.pool.retire(self)
        try:
            self.sslobj.unwrap()
        except (ssl.SSLError, ValueError):
            pass
        out = self.outgoing
        if out.pending:
            self.tcp_write(out.read())
        self.transport.loseConnection()

    def tls_failed(self, exc: Exception) -> None:
        """
        The TLS layer failed: fail the request in flight with a
        :class:`TLSError` (a :class:`CertificateError` for a certificate
        that did not verify), in the words of :mod:`.tlserrors`, and drop
        the connection.
        """
        pool = self.pool
        problem: TLSError
        if isinstance(exc, ssl.SSLError):
            problem = from_ssl_error(pool.address, exc, pool.server_hostname, self.sslobj)
        else:
            problem = TLSError(pool.address, one_line(str(exc)))
        req = self.req
        self.req = None
        self.abort()
        if req is not None:
            req.conn = None
            req.errback(problem)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        req = self.req
        if req is not None and self.write is None and self.sslobj is not None:
            # Closed during the handshake: say so rather than "closed
            # before the response was complete".
            self.req = None
            req.conn = None
            super().connectionLost(reason)
            req.errback(TLSError(self.pool.address, "connection closed during the TLS handshake"))
            return
        super().connectionLost(reason)
