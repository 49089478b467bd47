"""
:class:`StubFastHTTP`: ``self.fast_http`` answered by a twisted.web
resource in memory, so that a script's own logic can be unit-tested with
trial and no server (as ``treq.testing.StubTreq`` is for treq). Public as
``octtwisted.testing.StubFastHTTP``.

It is the real client and session (request bytes, the httptools parser,
cookies, redirects, decoding, keep-alive), over in-memory connections
(``twisted.test.iosim``) to a ``twisted.web.server.Site`` of the resource,
on a fake clock. ``https://`` URLs are served by the same resource without
TLS.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.test import iosim
from twisted.web.resource import IResource
from twisted.web.server import Site

from octtwisted._http.fast.client import DEFAULT_TIMEOUT, FastHTTPClient
from octtwisted._http.fast.options import HeadersArg
from octtwisted._http.fast.response import FastResponse
from octtwisted._http.fast.session import FastSession


class _Connector:
    """What ``connectTCP`` returns: the connection is made at once."""

    state = "connected"

    def stopConnecting(self) -> None:
        pass


class _MemoryReactor(MemoryReactorClock):
    """
    A fake reactor whose ``connectTCP`` connects the client's protocol to
    a new server protocol of ``site``, in memory.
    """

    def __init__(self) -> None:
        super().__init__()
        self.site: Site | None = None
        self.pumps: list[iosim.IOPump] = []

    def connectTCP(self, host: str, port: int, factory: Any, timeout: float = 30, bindAddress: Any = None) -> Any:
        assert self.site is not None
        client_address = IPv4Address("TCP", "127.0.0.1", 40000 + len(self.pumps))
        server_address = IPv4Address("TCP", host, port)
        client = factory.buildProtocol(server_address)
        server = self.site.buildProtocol(client_address)
        pump = iosim.connect(
            server,
            iosim.FakeTransport(server, True, server_address, client_address),
            client,
            iosim.FakeTransport(client, False, client_address, server_address),
            greet=False,
        )
        self.pumps.append(pump)
        return _Connector()

    def flush(self) -> None:
        """
        Move bytes both ways on every connection until none move.
        """
        moved = True
        while moved:
            moved = False
            for pump in list(self.pumps):
                if pump.pump(advanceClock=False):
                    moved = True
                if pump.serverIO.disconnected and pump.clientIO.disconnected:
                    self.pumps.remove(pump)
                    moved = True


class _StubClient(FastHTTPClient):
    """The client with every URL served in memory, ``https://`` too."""

    def _tls(self) -> Any:
        return None


class StubFastHTTP(FastSession):
    """
    A :class:`~octtwisted.fasthttp.FastSession` whose requests are answered
    by ``resource`` (any ``twisted.web`` resource) in memory.

    A resource that answers at once (it returns bytes from ``render``)
    answers before ``request`` returns: ``self.successResultOf(d)`` or
    ``await d`` work at once. One that answers later (``NOT_DONE_YET``)
    answers when :meth:`flush` is called after it has.

    :ivar clock: the fake clock of the client's timeouts (and the site's):
        ``clock.advance(seconds)`` to make a timeout fire.

    Example::

        stub = StubFastHTTP(MyResource())
        transaction = Transaction(config, {})
        stub.attach(transaction)          # self.fast_http is now the stub
        self.successResultOf(defer.ensureDeferred(transaction.run()))
    """

    def __init__(self, resource: IResource, connections_per_host: int = 10, timeout: float | None = 30.0) -> None:
        reactor = _MemoryReactor()
        reactor.site = Site(resource, reactor=reactor)
        reactor.site.timeOut = None
        reactor.site.noisy = False
        reactor.site.log = lambda request: None  # type: ignore[method-assign]
        self.clock = reactor
        super().__init__(_StubClient(reactor, connections_per_host=connections_per_host, timeout=timeout))

    def request(
        self,
        method: bytes | str,
        url: str,
        body: bytes | None = None,
        headers: HeadersArg = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        allow_redirects: bool = True,
        max_response_body: int | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Deferred[FastResponse]:
        d = super().request(
            method, url, body, headers, timeout, allow_redirects, max_response_body, name,
            **options,
        )
        self.flush()
        return d

    def flush(self) -> None:
        """
        Deliver every byte the resource and the client have written so far
        (redirects included).
        """
        self.clock.flush()

    def attach(self, transaction: Any) -> None:
        """
        Make ``transaction.fast_http`` (an ``octtwisted.Transaction``) this
        stub.
        """
        transaction._octtwisted_fast_session = self

    def close(self) -> Deferred[None]:
        """
        Close the in-memory connections.
        """
        d = self.client.close()
        self.flush()
        return d
