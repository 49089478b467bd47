"""
Hostile HTTP targets on 127.0.0.1, for the response limits: each answers
every request with a response that never ends, as fast as the client
reads it (a pull producer: the next 64 KiB is written when the kernel
took the last).

Modes:

``endless``
    ``200``, no length, body until the connection closes: for ever.
``huge-length``
    ``Content-Length: 10737418240`` (10 GiB), then the body, for ever.
``endless-chunk``
    ``Transfer-Encoding: chunked`` and one chunk of ``ffffffffff`` bytes.
``huge-head``
    a status line, then header lines for ever.
``many-headers``
    1,000 short header fields, then an empty body.
``silent``
    accepts the connection and reads the request, and never answers.
``trickle``
    answers a 1,000-byte response one byte a second.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import protocol, reactor
from twisted.internet.interfaces import IListeningPort, IPullProducer
from twisted.internet.task import LoopingCall
from zope.interface import implementer

_BLOCK = 64 * 1024


@implementer(IPullProducer)
class _Hostile(protocol.Protocol):
    def __init__(self, server: HostileHTTP) -> None:
        self.server = server
        self.request = b""
        self.answering = False

    def connectionMade(self) -> None:
        self.server.connections += 1

    def dataReceived(self, data: bytes) -> None:
        self.request += data
        if self.answering or b"\r\n\r\n" not in self.request:
            return
        self.answering = True
        mode = self.server.mode
        assert self.transport is not None
        if mode == "silent":
            return
        if mode == "trickle":
            self.left = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000
            self.trickle = LoopingCall(self.one_byte)
            self.trickle.start(1.0)
            return
        if mode == "many-headers":
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                + b"".join(b"X-%d: y\r\n" % i for i in range(1000)) + b"\r\n"
            )
            self.request = b""
            self.answering = False
            return
        head = {
            "endless": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
            "huge-length": b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n",
            "endless-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n",
            "huge-head": b"HTTP/1.1 200 OK\r\n",
        }[mode]
        self.block = b"X-Filler: " + b"y" * 100 + b"\r\n" if mode == "huge-head" else b"x" * _BLOCK
        if mode == "huge-head":
            self.block *= _BLOCK // len(self.block)
        self.transport.write(head)
        self.transport.registerProducer(self, False)

    def one_byte(self) -> None:
        assert self.transport is not None
        if self.left:
            self.server.sent += 1
            self.transport.write(self.left[:1])
            self.left = self.left[1:]

    def resumeProducing(self) -> None:
        assert self.transport is not None
        self.server.sent += len(self.block)
        self.transport.write(self.block)

    def stopProducing(self) -> None:
        pass

    def connectionLost(self, reason: Any = None) -> None:
        self.server.closed += 1
        trickle = getattr(self, "trickle", None)
        if trickle is not None and trickle.running:
            trickle.stop()


class HostileHTTP(protocol.ServerFactory):
    """
    Listens on 127.0.0.1 (``start()`` gives the port); counts the
    connections it accepted and saw closed, and the body bytes it sent.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.closed = 0
        self.sent = 0
        self.port: IListeningPort | None = None

    def buildProtocol(self, addr: Any) -> _Hostile:
        return _Hostile(self)

    def start(self) -> int:
        self.port = reactor.listenTCP(0, self, interface="127.0.0.1")
        return self.port.getHost().port  # type: ignore[attr-defined, no-any-return]

    def stop(self) -> Any:
        return self.port.stopListening() if self.port is not None else None
