"""
``octtwisted.testing.StubFastHTTP``: a script's ``self.fast_http``
answered by a twisted.web resource in memory, no server, no real reactor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

import octtwisted
from octtwisted.fasthttp import FastResponse, ResponseTimeout
from octtwisted.testing import StubFastHTTP


class Login(Resource):
    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        request.addCookie(b"session", b"s3cret", path=b"/")
        request.redirect(b"/home")
        return b""

    def render_GET(self, request: Request) -> bytes:
        cookie = request.getCookie(b"session")
        request.setHeader(b"content-type", b"application/json")
        return b'{"logged_in": %s}' % (b"true" if cookie == b"s3cret" else b"false")


class Later(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Request] = []

    def render_GET(self, request: Request) -> Any:
        self.waiting.append(request)
        return NOT_DONE_YET


class Shopper(octtwisted.Transaction):
    """A script under test: logs in, then checks it is logged in."""

    async def run(self) -> None:
        await self.fast_http.post("https://shop.example/login", b"user=a")
        response = await self.fast_http.get("https://shop.example/home")
        if not response.json()["logged_in"]:
            raise RuntimeError("not logged in")


class StubFastHTTPTests(SynchronousTestCase):
    def test_answers_at_once(self) -> None:
        """
        A resource that renders at once answers before ``get`` returns,
        through the real client (status, headers, body parsed).
        """
        root = Resource()
        root.putChild(b"home", Login())
        stub = StubFastHTTP(root)
        response = self.successResultOf(stub.get("http://shop.example/home"))
        self.assertIsInstance(response, FastResponse)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json(), {"logged_in": False})
        self.assertEqual(response.header("content-type"), b"application/json")

    def test_script_logic(self) -> None:
        """
        A Transaction attached to the stub runs its logic against the
        resource: the login's cookie and redirect are handled, so the
        script sees itself logged in; a script whose server says no fails.
        """
        root = Resource()
        login = Login()
        root.putChild(b"login", login)
        root.putChild(b"home", login)
        stub = StubFastHTTP(root)
        transaction = Shopper({}, {})
        stub.attach(transaction)
        self.assertIs(transaction.fast_http, stub)
        self.successResultOf(defer.ensureDeferred(transaction.run()))
        self.assertEqual(stub.cookies.get("session"), "s3cret")

        lonely = Shopper({}, {})
        empty = Resource()
        empty.putChild(b"login", Resource())
        empty.putChild(b"home", login)
        StubFastHTTP(empty).attach(lonely)
        failure = self.failureResultOf(defer.ensureDeferred(lonely.run()), RuntimeError)
        self.assertIn("not logged in", str(failure.value))

    def test_later_answers_and_timeouts(self) -> None:
        """
        A resource that answers later answers on ``flush()``; the stub's
        fake clock drives timeouts.
        """
        later = Later()
        stub = StubFastHTTP(later)
        d = stub.get("http://api.example/slow")
        self.assertNoResult(d)
        request = later.waiting.pop()
        request.write(b"done")
        request.finish()
        stub.flush()
        self.assertEqual(self.successResultOf(d).body, b"done")

        d = stub.get("http://api.example/slow", timeout=2)
        stub.clock.advance(1.9)
        self.assertNoResult(d)
        stub.clock.advance(0.2)
        self.failureResultOf(d, ResponseTimeout)
