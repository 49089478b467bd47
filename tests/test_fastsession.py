"""
What a script's ``self.fast_http`` (a :class:`FastSession` per cannon)
offers beyond the bare client, as Locust's FastHttpSession does: cookies
per session, redirects, gzip/deflate, ``json=``/``params=``/``data=``/
``headers=``/``auth=``/``timeout=``, ``json()``/``text()``, HEAD, chunked
and read-to-close bodies. Every test runs over plain HTTP and again over
HTTPS, against twisted.web on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from octtwisted._core.config import TLSOptions
from octtwisted._http.fast import (
    FastHTTPClient,
    FastSession,
    ProtocolError,
    ResponseTimeout,
    TooManyRedirects,
)
from octtwisted._http.tls import ssl_context
from tests.test_fasthttp import Chunked, QuietSite, TrackingFactory
from tests.tlshelpers import ServerTLS, TLSServerMixin


class Inspect(Resource):
    """
    Answers with a JSON object describing the request.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        headers = {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        return json.dumps({
            "method": request.method.decode(),
            "uri": request.uri.decode(),
            "args": {k.decode(): [x.decode() for x in v] for k, v in request.args.items()},
            "body": request.content.read().decode(),
            "headers": headers,
        }).encode()


class SetCookie(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        for raw in request.args.get(b"c", []):
            request.responseHeaders.addRawHeader(b"set-cookie", raw)
        return b"set"


class Redirect(Resource):
    """
    ``/redirect/N`` sends 302 to ``/redirect/N-1``; ``/redirect/0`` is 200.
    ``/redirect/loop`` redirects to itself; ``/redirect/303`` is a 303 to
    ``/inspect``; ``/redirect/307`` a 307 to it.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        step = request.postpath[0].decode() if request.postpath else "0"
        if step == "loop":
            request.redirect(b"/redirect/loop")
        elif step in ("303", "307"):
            request.setResponseCode(int(step))
            request.setHeader(b"location", b"/inspect")
        elif step == "0":
            return b"arrived"
        else:
            request.redirect(f"/redirect/{int(step) - 1}".encode())
        return b""


class Encoded(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        kind = request.postpath[0]
        request.setHeader(b"content-encoding", kind)
        text = b"squeezed " * 20
        if kind == b"gzip":
            return gzip.compress(text)
        if kind == b"deflate":
            return zlib.compress(text)
        if kind == b"rawdeflate":
            request.setHeader(b"content-encoding", b"deflate")
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            return packer.compress(text) + packer.flush()
        request.setHeader(b"content-encoding", b"gzip")
        return b"this is not gzip"


class Stall(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> Any:
        return NOT_DONE_YET


class UntilClose(Protocol):
    """
    A response with neither Content-Length nor chunking: the body ends
    when the connection does.
    """

    def dataReceived(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            self.transport.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            self.transport.loseConnection()


def site() -> QuietSite:
    root = Resource()
    root.putChild(b"inspect", Inspect())
    root.putChild(b"setcookie", SetCookie())
    root.putChild(b"redirect", Redirect())
    root.putChild(b"encoded", Encoded())
    root.putChild(b"chunked", Chunked())
    root.putChild(b"stall", Stall())
    return QuietSite(root)


class SessionHTTPTests(TLSServerMixin, TestCase):
    """
    Over plain HTTP.
    """

    timeout = 20
    scheme = "http"

    def serve(self, factory: Factory) -> str:
        tracking = TrackingFactory(factory)
        port = reactor.listenTCP(0, tracking, interface="127.0.0.1")
        self._stop(port, tracking)
        return f"http://127.0.0.1:{port.getHost().port}"

    def _stop(self, port: Any, tracking: TrackingFactory) -> None:
        async def stop() -> None:
            await port.stopListening()
            for p in list(tracking.protocols):
                p.transport.abortConnection()
            await tracking.all_closed()

        self.addCleanup(lambda: defer.ensureDeferred(stop()))

    def setUp(self) -> None:
        self.base = self.serve(site())
        self.client = FastHTTPClient(reactor, tls_context=self.tls_context())
        self.addCleanup(self.client.close)

    def tls_context(self) -> Any:
        return None

    def session(self) -> FastSession:
        return FastSession(self.client)

    async def test_cookies_per_session(self) -> None:
        """
        A cookie set on one session's response is sent by that session's
        later requests, never by another session's (two cannons share the
        client); Max-Age=0 deletes it.
        """
        one, two = self.session(), self.session()
        await one.get(self.base + "/setcookie?c=sid%3Dabc%3B%20Path%3D%2F&c=theme%3Ddark")
        seen_one = (await one.get(self.base + "/inspect")).json()["headers"]
        seen_two = (await two.get(self.base + "/inspect")).json()["headers"]
        self.assertEqual(seen_one.get("cookie"), "sid=abc; theme=dark")
        self.assertNotIn("cookie", seen_two)
        self.assertEqual(one.cookies.get("sid"), "abc")
        await one.get(self.base + "/setcookie?c=sid%3D%3B%20Max-Age%3D0")
        self.assertEqual((await one.get(self.base + "/inspect")).json()["headers"].get("cookie"), "theme=dark")

    async def test_cookie_path_and_secure(self) -> None:
        """
        A cookie with a Path goes only to that path and below; a Secure one
        only over https://.
        """
        session = self.session()
        await session.get(self.base + "/setcookie?c=a%3D1%3B%20Path%3D%2Finspect&c=b%3D2%3B%20Path%3D%2Fother"
                          "&c=s%3D3%3B%20Secure")
        cookie = (await session.get(self.base + "/inspect")).json()["headers"].get("cookie")
        expected = "a=1; s=3" if self.scheme == "https" else "a=1"
        self.assertEqual(cookie, expected)

    async def test_redirects_followed(self) -> None:
        """
        Redirects are followed by default; the final response is returned,
        with the URL it answers and the redirect count.
        """
        response = await self.session().get(self.base + "/redirect/3")
        self.assertEqual((response.code, response.body), (200, b"arrived"))
        self.assertEqual(response.redirects, 3)
        self.assertEqual([r.code for r in response.history], [302, 302, 302])
        self.assertEqual(response.url, self.base + "/redirect/0")

    async def test_redirect_limit_and_opt_out(self) -> None:
        """
        At most 5 redirects are followed (more is a TooManyRedirects error);
        ``allow_redirects=False`` returns the redirect itself.
        """
        session = self.session()
        self.assertEqual((await session.get(self.base + "/redirect/5")).redirects, 5)
        with self.assertRaises(TooManyRedirects) as caught:
            await session.get(self.base + "/redirect/loop")
        self.assertIn("more than 5 redirects", str(caught.exception))
        self.assertEqual(len(caught.exception.history), 6)
        response = await session.get(self.base + "/redirect/2", allow_redirects=False)
        self.assertEqual((response.code, response.redirects), (302, 0))
        self.assertEqual(response.header("location"), b"/redirect/1")

    async def test_redirect_methods(self) -> None:
        """
        A POST answered by 303 is followed with a GET without the body; a
        307 keeps the method and the body.
        """
        session = self.session()
        seen = (await session.post(self.base + "/redirect/303", b"payload")).json()
        self.assertEqual((seen["method"], seen["body"]), ("GET", ""))
        seen = (await session.post(self.base + "/redirect/307", b"payload")).json()
        self.assertEqual((seen["method"], seen["body"]), ("POST", "payload"))

    async def test_decoding(self) -> None:
        """
        gzip and deflate bodies (zlib-wrapped or raw) are decoded; a body
        that does not decode is a ProtocolError.
        """
        session = self.session()
        for kind in ("gzip", "deflate", "rawdeflate"):
            response = await session.get(f"{self.base}/encoded/{kind}")
            self.assertEqual(response.body, b"squeezed " * 20, kind)
        with self.assertRaises(ProtocolError) as caught:
            await session.get(self.base + "/encoded/broken")
        self.assertIn("cannot decode the gzip body", str(caught.exception))

    async def test_request_options(self) -> None:
        """
        ``params=`` joins the query, ``json=`` sends JSON with its content
        type, ``data=`` sends a form (dict) or bytes, ``headers=`` are sent,
        ``auth=`` is HTTP basic; ``response.json()`` and ``text()`` read the
        answer.
        """
        session = self.session()
        seen = (await session.get(self.base + "/inspect?a=1", params={"b": "two", "c": ["x", "y"]})).json()
        self.assertEqual(seen["args"], {"a": ["1"], "b": ["two"], "c": ["x", "y"]})
        seen = (await session.post(self.base + "/inspect", json={"k": [1, 2]})).json()
        self.assertEqual((json.loads(seen["body"]), seen["headers"]["content-type"]), ({"k": [1, 2]}, "application/json"))
        seen = (await session.post(self.base + "/inspect", data={"f": "v w"})).json()
        self.assertEqual((seen["body"], seen["headers"]["content-type"]), ("f=v+w", "application/x-www-form-urlencoded"))
        response = await session.put(self.base + "/inspect", data=b"raw", headers={"X-Extra": "1"}, auth=("user", "pa:ss"))
        seen = response.json()
        self.assertEqual((seen["method"], seen["body"], seen["headers"]["x-extra"]), ("PUT", "raw", "1"))
        self.assertEqual(seen["headers"]["authorization"], "Basic dXNlcjpwYTpzcw==")
        self.assertIn('"method": "PUT"', response.text())
        with self.assertRaises(Exception):
            await session.post(self.base + "/inspect", b"body", json={"both": True})

    async def test_per_request_timeout(self) -> None:
        """
        ``timeout=`` on one request bounds that request only.
        """
        session = self.session()
        with self.assertRaises(ResponseTimeout) as caught:
            await session.get(self.base + "/stall", timeout=0.2)
        self.assertEqual(caught.exception.timeout, 0.2)
        self.assertEqual((await session.get(self.base + "/inspect", timeout=5)).code, 200)

    async def test_head_chunked_and_until_close(self) -> None:
        """
        HEAD gets headers and no body; a chunked body and one that runs
        until the server closes are read whole.
        """
        session = self.session()
        response = await session.head(self.base + "/inspect")
        self.assertEqual((response.code, response.body), (200, b""))
        self.assertEqual(response.header("content-type"), b"application/json")
        self.assertEqual((await session.get(self.base + "/chunked")).body, b"hello chunked world")
        raw = Factory.forProtocol(UntilClose)
        raw.noisy = False
        response = await session.get(self.serve(raw) + "/")
        self.assertEqual(response.body, b"until the end")


class SessionHTTPSTests(SessionHTTPTests):
    """
    The same, over HTTPS (Twisted TLS server, a test CA).
    """

    scheme = "https"

    def serve(self, factory: Factory) -> str:
        if not hasattr(self, "_tls"):
            ca, cert = self.certificates()
            self._ca = self.pem_file(ca.cert_pem, "ca.pem")
            self._tls = ServerTLS(cert)
        tracking = TrackingFactory(factory)
        port = reactor.listenSSL(0, tracking, self._tls, interface="127.0.0.1")
        self._stop(port, tracking)
        return f"https://127.0.0.1:{port.getHost().port}"

    def tls_context(self) -> Any:
        return ssl_context(TLSOptions(ca=self._ca))


class PerCannonSessionTests(TestCase):
    def test_one_session_per_transaction(self) -> None:
        """
        Each Transaction (cannon) gets its own FastSession, kept across
        its transactions, and all of them share the run's one client.
        """
        import octtwisted
        from octtwisted._http.shared import SharedHTTPClient

        shared = SharedHTTPClient(reactor, 2)
        self.addCleanup(shared.close)
        one, two = octtwisted.Transaction({}, {}), octtwisted.Transaction({}, {})
        one._octtwisted_http = two._octtwisted_http = shared
        self.assertIsInstance(one.fast_http, FastSession)
        self.assertIs(one.fast_http, one.fast_http)
        self.assertIsNot(one.fast_http, two.fast_http)
        self.assertIs(one.fast_http.client, two.fast_http.client)
        self.assertIsNot(one.fast_http.cookies, two.fast_http.cookies)
