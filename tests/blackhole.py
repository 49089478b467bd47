"""
A TCP proxy on 127.0.0.1 that forwards until told to swallow: then it
behaves like a crashed host or a network split, as seen from the turret.
Nothing is closed, nothing is answered, whatever is sent is lost.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import protocol, reactor
from twisted.internet.interfaces import IListeningPort


class _Upstream(protocol.Protocol):
    """The proxy's connection to the real server."""

    def __init__(self, downstream: _Downstream) -> None:
        self.downstream = downstream

    def connectionMade(self) -> None:
        self.downstream.upstream_ready(self)

    def dataReceived(self, data: bytes) -> None:
        if not self.downstream.swallowed:
            assert self.downstream.transport is not None
            self.downstream.transport.write(data)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.downstream.swallowed and self.downstream.transport is not None:
            self.downstream.transport.loseConnection()


class _Downstream(protocol.Protocol):
    """A client's connection to the proxy."""

    def __init__(self, proxy: BlackHoleProxy) -> None:
        self.proxy = proxy
        self.swallowed = proxy.swallowing
        self.upstream: _Upstream | None = None
        self.waiting: list[bytes] = []

    def connectionMade(self) -> None:
        self.proxy.connections.append(self)
        if not self.swallowed:
            protocol.ClientCreator(reactor, _Upstream, self).connectTCP("127.0.0.1", self.proxy.target_port)

    def upstream_ready(self, upstream: _Upstream) -> None:
        self.upstream = upstream
        if self.swallowed:
            return
        assert upstream.transport is not None
        for data in self.waiting:
            upstream.transport.write(data)
        self.waiting = []

    def dataReceived(self, data: bytes) -> None:
        if self.swallowed:
            return
        if self.upstream is None:
            self.waiting.append(data)
        else:
            assert self.upstream.transport is not None
            self.upstream.transport.write(data)

    def connectionLost(self, reason: Any = None) -> None:
        # A swallowed connection's server never hears of it (the network
        # is split); a forwarded one is closed on the other side too.
        if not self.swallowed and self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.loseConnection()

    def close(self) -> None:
        for side in (self, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.abortConnection()  # type: ignore[attr-defined]


class BlackHoleProxy(protocol.Factory):
    """
    Listens on a free port of 127.0.0.1 and forwards each connection to
    ``target_port`` on 127.0.0.1, until :meth:`swallow`.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.swallowing = False
        self.connections: list[_Downstream] = []
        self._port: IListeningPort | None = None

    def buildProtocol(self, addr: Any) -> _Downstream:
        return _Downstream(self)

    def start(self) -> int:
        """Listen; returns the port."""
        self._port = reactor.listenTCP(0, self, interface="127.0.0.1")
        return int(self._port.getHost().port)  # type: ignore[attr-defined]

    def swallow(self) -> None:
        """
        From now on, forward nothing: the open connections stay open and
        go silent both ways, and new ones are accepted but lead nowhere.
        """
        self.swallowing = True
        for connection in self.connections:
            connection.swallowed = True

    def forward(self) -> None:
        """
        New connections are forwarded again (the swallowed ones stay dead).
        """
        self.swallowing = False

    def stop(self) -> Any:
        """For ``addCleanup``: close every connection and stop listening."""
        for connection in self.connections:
            connection.close()
        self.connections = []
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()
        return None
