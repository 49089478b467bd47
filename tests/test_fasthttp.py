"""
Tests for :mod:`octtwisted._http.fast` against real servers on 127.0.0.1:
a twisted.web site for well-behaved HTTP, and small hand-written protocols
for servers that stall, hang up, or send nonsense.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

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

# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


class _TrackedWrapper(ProtocolWrapper):
    pass


class TrackingFactory(WrappingFactory):
    """
    Wraps a server factory to count the connections it accepts and to close
    the ones still open when the test ends.
    """

    protocol = _TrackedWrapper
    noisy = False

    def __init__(self, wrapped: Factory) -> None:
        super().__init__(wrapped)
        self.accepted = 0
        self._idle: list[Deferred[None]] = []

    def buildProtocol(self, addr: Any) -> Any:
        self.accepted += 1
        return super().buildProtocol(addr)

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)
        if not self.protocols:
            waiters, self._idle = self._idle, []
            for waiter in waiters:
                waiter.callback(None)

    def all_closed(self) -> Deferred[None]:
        """
        Fires once no accepted connection is open.
        """
        if not self.protocols:
            return defer.succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle.append(waiter)
        return waiter


class QuietSite(Site):
    noisy = False

    def log(self, request: Request) -> None:
        pass


class Echo(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setHeader(b"x-echo", request.getHeader(b"x-test") or b"")
        request.setHeader(b"x-ua", request.getHeader(b"user-agent") or b"")
        return request.method + b" " + request.content.read()


class Slow(Resource):
    """
    Answers after 0.1 s and records the most requests it held at once.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0

    def render_GET(self, request: Request) -> Any:
        self.active += 1
        self.peak = max(self.peak, self.active)

        def done() -> None:
            self.active -= 1
            request.write(b"slow")
            request.finish()

        reactor.callLater(0.1, done)
        return NOT_DONE_YET


class Chunked(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> Any:
        request.write(b"hello ")

        def rest() -> None:
            request.write(b"chunked ")
            request.write(b"world")
            request.finish()

        reactor.callLater(0.01, rest)
        return NOT_DONE_YET


class CloseAfter(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"connection", b"close")
        return b"bye"


class NoContent(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setResponseCode(204)
        return b""


class Scripted(Protocol):
    """
    A raw server: calls ``factory.handler(self, n)`` for the n-th request
    (counting from 1) read on this connection. Requests have no body.
    """

    def connectionMade(self) -> None:
        self.buffer = b""
        self.count = 0

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.count += 1
            self.factory.requests += 1  # type: ignore[attr-defined]
            self.factory.handler(self, self.count)  # type: ignore[attr-defined]


def scripted(handler: Callable[[Scripted, int], None]) -> Factory:
    factory = Factory.forProtocol(Scripted)
    factory.noisy = False
    factory.handler = handler  # type: ignore[attr-defined]
    factory.requests = 0  # type: ignore[attr-defined]
    return factory


OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


class FastHTTPClientTests(TestCase):
    timeout = 20

    def serve(self, factory: Factory) -> tuple[str, TrackingFactory]:
        """
        Listen on 127.0.0.1 (a free port) until the test ends; return the
        base URL and the tracking factory.
        """
        tracking = TrackingFactory(factory)
        port = reactor.listenTCP(0, tracking, interface="127.0.0.1")

        async def stop() -> None:
            await port.stopListening()
            for p in list(tracking.protocols):
                p.transport.abortConnection()
            await tracking.all_closed()

        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        return f"http://127.0.0.1:{port.getHost().port}", tracking

    def site(self) -> tuple[str, TrackingFactory, Slow]:
        root = Resource()
        slow = Slow()
        root.putChild(b"echo", Echo())
        root.putChild(b"slow", slow)
        root.putChild(b"chunked", Chunked())
        root.putChild(b"close", CloseAfter())
        root.putChild(b"nocontent", NoContent())
        url, tracking = self.serve(QuietSite(root))
        return url, tracking, slow

    def client(self, **kw: Any) -> FastHTTPClient:
        client = FastHTTPClient(reactor, **kw)
        self.addCleanup(client.close)
        return client

    async def test_get_and_post(self) -> None:
        """
        GET and POST round trips carry method, body and headers both ways;
        the default User-Agent is sent, and response headers come back with
        lowercase names.
        """
        url, _, _ = self.site()
        client = self.client()
        response = await client.get(url + "/echo", headers={"X-Test": "abc"})
        self.assertIsInstance(response, FastResponse)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"GET ")
        self.assertEqual(response.header(b"X-Echo"), b"abc")
        self.assertEqual(response.header(b"x-ua"), b"oct-twisted")
        self.assertIn(b"x-echo", [name for name, _ in response.headers])
        self.assertIsNone(response.header(b"x-missing"))

        response = await client.post(url + "/echo", b"payload \xe2\x9c\x93", headers=[(b"X-Test", b"xyz")])
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"POST payload \xe2\x9c\x93")
        self.assertEqual(response.text(), "POST payload \u2713")
        self.assertEqual(response.header(b"x-echo"), b"xyz")
        self.assertEqual(client.requests, 2)
        self.assertEqual(client.connections_opened, 1)

    async def test_keep_alive_reuse(self) -> None:
        """
        100 sequential GETs all go over one kept-alive connection.
        """
        url, tracking, _ = self.site()
        client = self.client()
        for _ in range(100):
            response = await client.get(url + "/echo")
            self.assertEqual(response.code, 200)
        self.assertEqual(client.requests, 100)
        self.assertEqual(client.connections_opened, 1)
        self.assertEqual(tracking.accepted, 1)

    async def test_concurrency_limit(self) -> None:
        """
        With connections_per_host=3, ten concurrent slow requests open
        exactly three connections, the server never holds more than three
        at once, and all ten succeed (the rest waited their turn).
        """
        url, tracking, slow = self.site()
        client = self.client(connections_per_host=3)
        responses = await defer.gatherResults([client.get(url + "/slow") for _ in range(10)])
        self.assertEqual([r.body for r in responses], [b"slow"] * 10)
        self.assertEqual(client.connections_opened, 3)
        self.assertEqual(tracking.accepted, 3)
        self.assertEqual(slow.peak, 3)

    async def test_chunked(self) -> None:
        """
        A chunked response sent in several writes is joined into one body,
        and the connection is reused afterwards.
        """
        url, _, _ = self.site()
        client = self.client()
        response = await client.get(url + "/chunked")
        self.assertEqual(response.header(b"transfer-encoding"), b"chunked")
        self.assertEqual(response.body, b"hello chunked world")
        await client.get(url + "/chunked")
        self.assertEqual(client.connections_opened, 1)

    async def test_head_and_no_content(self) -> None:
        """
        HEAD (with a Content-Length but no body) and 204 responses complete
        without waiting for a body, and the connection stays usable.
        """
        url, _, _ = self.site()
        client = self.client()
        response = await client.request("HEAD", url + "/echo")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"")
        self.assertEqual(response.header(b"content-length"), b"5")
        response = await client.get(url + "/nocontent")
        self.assertEqual((response.code, response.body), (204, b""))
        response = await client.get(url + "/echo")
        self.assertEqual(response.body, b"GET ")
        self.assertEqual(client.connections_opened, 1)

    async def test_connection_close(self) -> None:
        """
        A response saying ``Connection: close`` is delivered and its
        connection is not reused: the next request opens a new one.
        """
        url, tracking, _ = self.site()
        client = self.client()
        response = await client.get(url + "/close")
        self.assertEqual(response.body, b"bye")
        response = await client.get(url + "/close")
        self.assertEqual(response.body, b"bye")
        self.assertEqual(client.connections_opened, 2)
        self.assertEqual(tracking.accepted, 2)

    async def test_body_until_close(self) -> None:
        """
        A body with neither a length nor chunking ends when the server
        closes the connection.
        """

        def handler(server: Scripted, n: int) -> None:
            server.transport.write(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil ")
            server.transport.write(b"closed")
            server.transport.loseConnection()

        url, _ = self.serve(scripted(handler))
        client = self.client()
        response = await client.get(url + "/")
        self.assertEqual(response.body, b"until closed")
        self.assertEqual(response.header(b"x-a"), b"1")

    async def test_interim_response_skipped(self) -> None:
        """
        An interim ``100 Continue`` before the real response is skipped: the
        result is the final response, with its own headers only.
        """

        def handler(server: Scripted, n: int) -> None:
            server.transport.write(b"HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n")
            server.transport.write(b"HTTP/1.1 201 Created\r\nX-A: 2\r\nContent-Length: 4\r\n\r\ndone")

        url, _ = self.serve(scripted(handler))
        client = self.client()
        response = await client.get(url + "/")
        self.assertEqual((response.code, response.body), (201, b"done"))
        self.assertEqual(response.headers, [(b"x-a", b"2"), (b"content-length", b"4")])

    async def test_connection_refused(self) -> None:
        """
        Connecting to a port nobody listens on fails with ConnectError that
        names the address.
        """
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        number = port.getHost().port
        await port.stopListening()
        client = self.client()
        with self.assertRaises(ConnectError) as caught:
            await client.get(f"http://127.0.0.1:{number}/")
        self.assertEqual(str(caught.exception), f"connection refused: 127.0.0.1:{number}")

    async def test_closed_mid_body(self) -> None:
        """
        A server that hangs up (cleanly or by abort) halfway through a
        Content-Length body makes the request fail with ConnectionLost.
        """
        for close in ("loseConnection", "abortConnection"):

            def handler(server: Scripted, n: int, close: str = close) -> None:
                server.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                getattr(server.transport, close)()

            url, _ = self.serve(scripted(handler))
            client = self.client()
            with self.assertRaises(ConnectionLost) as caught:
                await client.get(url + "/")
            self.assertEqual(
                str(caught.exception),
                f"connection closed by {url[len('http://'):]} before the response was complete",
            )

    async def test_stalled_body_times_out(self) -> None:
        """
        Headers followed by a body that never finishes fail with
        ResponseTimeout("timeout after 0.3s"); the connection is closed,
        and the next request opens a new one.
        """
        stall = [True]

        def handler(server: Scripted, n: int) -> None:
            if stall[0]:
                server.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            else:
                server.transport.write(OK_RESPONSE)

        url, tracking = self.serve(scripted(handler))
        client = self.client()
        started = reactor.seconds()
        with self.assertRaises(ResponseTimeout) as caught:
            await client.get(url + "/", timeout=0.3)
        self.assertEqual(str(caught.exception), "timeout after 0.3s")
        self.assertGreaterEqual(reactor.seconds() - started, 0.29)
        await tracking.all_closed()
        stall[0] = False
        response = await client.get(url + "/", timeout=0.3)
        self.assertEqual(response.body, b"ok")
        self.assertEqual(client.connections_opened, 2)
        self.assertEqual(tracking.accepted, 2)

    async def test_stale_connection_retried(self) -> None:
        """
        A GET sent on a kept-alive connection that the server closes
        without answering is sent once more on a new connection and
        succeeds; a POST in the same spot is not retried.
        """

        def handler(server: Scripted, n: int) -> None:
            if n == 1:
                server.transport.write(OK_RESPONSE)
            else:
                server.transport.loseConnection()

        url, tracking = self.serve(scripted(handler))
        client = self.client()
        self.assertEqual((await client.get(url + "/")).body, b"ok")
        self.assertEqual((await client.get(url + "/")).body, b"ok")
        self.assertEqual(client.connections_opened, 2)
        self.assertEqual(tracking.wrappedFactory.requests, 3)

        with self.assertRaises(ConnectionLost):
            await client.post(url + "/")
        self.assertEqual(client.connections_opened, 2)

    async def test_queued_request_times_out(self) -> None:
        """
        The timeout counts from the call: a request still queued behind a
        stalled one (connections_per_host=1) fails with ResponseTimeout too,
        without opening a connection of its own.
        """
        url, tracking = self.serve(scripted(lambda server, n: None))
        client = self.client(connections_per_host=1, timeout=0.2)
        first, second = client.get(url + "/"), client.get(url + "/")
        for d in (first, second):
            with self.assertRaises(ResponseTimeout):
                await d
        self.assertEqual(client.connections_opened, 1)
        await tracking.all_closed()

    async def test_other_schemes_rejected(self) -> None:
        """
        A URL that is neither http:// nor https:// fails at once, naming
        the URL, and opens nothing.
        """
        client = self.client()
        failure = self.failureResultOf(client.get("ftp://127.0.0.1/"), HTTPError)
        self.assertIn("http:// and https://", str(failure.value))
        self.assertIn("ftp://127.0.0.1/", str(failure.value))
        self.assertEqual(client.connections_opened, 0)

    async def test_close(self) -> None:
        """
        close() fails the request in flight and the queued ones with
        ClientClosed, closes the connection (the server sees it go), and
        later requests fail at once.
        """
        url, tracking = self.serve(scripted(lambda server, n: None))
        client = FastHTTPClient(reactor, connections_per_host=1)
        requests = [client.get(url + "/") for _ in range(3)]
        while tracking.wrappedFactory.requests < 1:
            await deferLater(reactor, 0.01, lambda: None)
        await client.close()
        for d in requests:
            failure = self.failureResultOf(d, ClientClosed)
            self.assertIn("close()", str(failure.value))
        await tracking.all_closed()
        self.assertEqual(client.connections_opened, 1)
        self.failureResultOf(client.get(url + "/"), ClientClosed)

    async def test_garbage_response(self) -> None:
        """
        Bytes that are not HTTP fail the request with ProtocolError naming
        the server.
        """
        url, tracking = self.serve(scripted(lambda server, n: server.transport.write(b"HELLO THERE\r\n\r\n")))
        client = self.client()
        with self.assertRaises(ProtocolError) as caught:
            await client.get(url + "/")
        self.assertIn(f"invalid HTTP response from {url[len('http://'):]}", str(caught.exception))
        await tracking.all_closed()

    async def test_cancel_closes_connection(self) -> None:
        """
        Cancelling a request in flight closes its connection.
        """
        url, tracking = self.serve(scripted(lambda server, n: None))
        client = self.client()
        d = client.get(url + "/")
        while tracking.wrappedFactory.requests < 1:
            await deferLater(reactor, 0.01, lambda: None)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        await tracking.all_closed()


class BytesAfterTheEndTests(TestCase):
    """
    Issue 12, item 10: bytes that arrive after a complete response, in the
    same read, belong to no request.
    """

    timeout = 20

    async def test_unsolicited_response_after_a_complete_one(self) -> None:
        """
        A server writes a complete 200 and, in the same write, an
        unsolicited 408: the request gets the 200 and its body alone, and
        the connection is closed (the next request opens a new one and
        gets its own response).
        """
        from twisted.internet import protocol as twisted_protocol
        from twisted.internet import reactor as the_reactor

        from octtwisted._http.fast.client import FastHTTPClient as Client

        class Answers(twisted_protocol.Protocol):
            def dataReceived(self, data: bytes) -> None:
                if b"\r\n\r\n" in data:
                    self.transport.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                        b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 7\r\n"
                        b"Connection: close\r\n\r\ntimeout"
                    )

        port = the_reactor.listenTCP(0, twisted_protocol.Factory.forProtocol(Answers), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = Client(the_reactor, connections_per_host=1)
        self.addCleanup(client.close)
        url = f"http://127.0.0.1:{port.getHost().port}/"
        first = await client.get(url)
        self.assertEqual((first.code, first.body), (200, b"ok"))
        second = await client.get(url)
        self.assertEqual((second.code, second.body), (200, b"ok"))
        self.assertEqual(client.connections_opened, 2)
