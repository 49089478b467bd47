"""
:class:`FastSession`: what a script's ``self.fast_http`` is. One per
cannon, over the run's shared :class:`~octtwisted._http.fast.client.FastHTTPClient`
(its connections are the run's), with what a load-test user expects of a
session, as Locust's ``FastHttpSession`` does:

* cookies, kept per session (so per cannon) in a :class:`~octtwisted._http.fast.cookies.CookieJar`;
* redirects followed (301, 302, 303, 307, 308; at most ``max_redirects``,
  5 by default; ``allow_redirects=False`` per request), the final
  response returned with the earlier ones in ``response.history``;
* ``Content-Encoding: gzip`` and ``deflate`` bodies decoded.

What it costs a request that uses none of it: one search of the raw
response head for ``Set-Cookie`` or ``Content-Encoding`` (a compiled
regular expression, in C), a set look-up of the status code, and a tuple;
a session without cookies adds no ``Cookie`` header.
"""

from __future__ import annotations

import re
import zlib
from typing import Any
from urllib.parse import urljoin, urlsplit

from twisted.internet import defer
from twisted.internet.defer import Deferred

from octtwisted._http.fast.client import DEFAULT_TIMEOUT, FastHTTPClient, body_limit
from octtwisted._http.fast.connection import Request
from octtwisted._http.fast.cookies import CookieJar
from octtwisted._http.fast.errors import HTTPError, ProtocolError, ResponseTooLarge
from octtwisted._http.fast.options import CLIENT_OPTIONS, HeadersArg, apply_options
from octtwisted._http.fast.response import FastResponse

#: Status codes that are followed.
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

#: Finds a header a session must act on, in a raw response head.
_INTERESTING = re.compile(rb"\n(?:set-cookie|content-encoding)[ \t]*:", re.IGNORECASE)

#: Headers not carried to the next request of a redirect chain (the
#: cookies are chosen again for the new URL).
_DROPPED_ON_REDIRECT = frozenset({b"cookie", b"host"})
_DROPPED_WITH_BODY = frozenset({b"content-type", b"content-length", b"transfer-encoding"})


class TooManyRedirects(HTTPError):
    """
    A redirect chain was longer than the session allows, e.g. ``more than
    5 redirects, last to http://127.0.0.1:8080/loop``.

    :ivar history: the redirect responses, oldest first.
    """

    def __init__(self, limit: int, url: str, history: list[FastResponse]) -> None:
        super().__init__(f"more than {limit} redirects, last to {url}")
        self.history = history


class FastSession:
    """
    One cannon's HTTP session over the run's :class:`FastHTTPClient`
    (see the module doc).

    :param client: the client whose connections it uses.
    :param max_redirects: the most redirects followed for one request.

    :ivar cookies: the session's :class:`CookieJar`.
    :ivar client: the shared client.
    :ivar owner: the transaction whose request timers get each request's
        time under its name (see :mod:`octtwisted._http.recording`), or None.
    """

    owner: Any = None

    def __init__(self, client: FastHTTPClient, max_redirects: int = 5) -> None:
        self.client = client
        self.max_redirects = max_redirects
        self.cookies = CookieJar(client.reactor)

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
        """
        Like :meth:`FastHTTPClient.request` (same arguments and options),
        with the session's cookies, redirects and decoding.

        :param name: the request's name in the per-request statistics
            (default ``METHOD /path``, without the query); its redirects
            count under it, as one request.

        :param allow_redirects: follow redirects (at most
            ``max_redirects``); if false, a redirect response is returned
            as it is.
        :param max_response_body: the most bytes of body this request
            reads, each response of its redirects too, and the most its
            decoded body may have.

        A chain longer than ``max_redirects`` fails with
        :class:`TooManyRedirects`.
        """
        if options:
            try:
                url, body, headers = apply_options(url, body, headers, options, CLIENT_OPTIONS)
            except Exception as exc:
                return defer.fail(exc)
        if max_response_body is not None:
            try:
                max_response_body = body_limit(max_response_body)
            except HTTPError as exc:
                return defer.fail(exc)
        if self.cookies._cookies:
            headers = self.cookies.add_to(url, headers)
        follow = self.max_redirects if allow_redirects else -1
        return self.client._send(
            method, url, body, headers, timeout, self, follow, max_body=max_response_body,
            name=name,
        )

    def get(self, url: str, **kw: Any) -> Deferred[FastResponse]:
        """``request(b"GET", url, **kw)``."""
        return self.request(b"GET", url, **kw)

    def post(self, url: str, body: bytes | None = None, **kw: Any) -> Deferred[FastResponse]:
        """``request(b"POST", url, body, **kw)``."""
        return self.request(b"POST", url, body, **kw)

    def head(self, url: str, **kw: Any) -> Deferred[FastResponse]:
        """``request(b"HEAD", url, **kw)``."""
        return self.request(b"HEAD", url, **kw)

    def put(self, url: str, body: bytes | None = None, **kw: Any) -> Deferred[FastResponse]:
        """``request(b"PUT", url, body, **kw)``."""
        return self.request(b"PUT", url, body, **kw)

    def patch(self, url: str, body: bytes | None = None, **kw: Any) -> Deferred[FastResponse]:
        """``request(b"PATCH", url, body, **kw)``."""
        return self.request(b"PATCH", url, body, **kw)

    def delete(self, url: str, **kw: Any) -> Deferred[FastResponse]:
        """``request(b"DELETE", url, **kw)``."""
        return self.request(b"DELETE", url, **kw)

    def options(self, url: str, **kw: Any) -> Deferred[FastResponse]:
        """``request(b"OPTIONS", url, **kw)``."""
        return self.request(b"OPTIONS", url, **kw)

    # -- called by the connection, before the caller sees the response ------

    def received(self, req: Request, response: FastResponse) -> bool:
        """
        Keep the response's cookies, decode its body, follow it if it is a
        redirect. True if ``req`` has been (or will be) fired here.
        """
        method, url, body, headers, follow, history = req.origin
        response.url = url
        if history:
            response.history = history
        head = response._head
        if head is None or _INTERESTING.search(head) is not None:
            cookies = response.header_values(b"set-cookie")
            if cookies:
                self.cookies.update(url, cookies)
            encoding = response.header(b"content-encoding")
            if encoding and response.body:
                try:
                    response.body = _decode(encoding, response.body, req.max_body)
                except _TooLarge:
                    req.errback(ResponseTooLarge(
                        _address(url), "body", req.max_body, "max_response_body", decoded=True
                    ))
                    return True
                except (zlib.error, ValueError) as exc:
                    req.errback(ProtocolError(_address(url), f"cannot decode the {encoding.decode('latin-1')} body ({exc})"))
                    return True
        if follow >= 0 and response.code in _REDIRECTS:
            return self._redirect(req, response, method, url, body, headers, follow, history)
        return False

    def _redirect(
        self,
        req: Request,
        response: FastResponse,
        method: Any,
        url: str,
        body: bytes | None,
        headers: HeadersArg,
        follow: int,
        history: tuple[FastResponse, ...] | list[FastResponse],
    ) -> bool:
        location = response.header(b"location")
        if not location:
            return False
        target = urljoin(url, location.decode("latin-1").strip())
        chain = list(history) + [response]
        if follow == 0:
            req.errback(TooManyRedirects(self.max_redirects, target, chain))
            return True
        method_b = method.encode("ascii") if isinstance(method, str) else bytes(method)
        code = response.code
        if code == 303 and method_b != b"HEAD" or code in (301, 302) and method_b == b"POST":
            method_b, body, dropped = b"GET", None, _DROPPED_ON_REDIRECT | _DROPPED_WITH_BODY
        else:
            dropped = _DROPPED_ON_REDIRECT
        if urlsplit(target).netloc != urlsplit(url).netloc:
            dropped = dropped | {b"authorization"}
        kept: list[tuple[Any, Any]] = []
        if headers is not None:
            items = headers.items() if hasattr(headers, "items") else headers
            for name, value in items:
                name_b = name.encode("latin-1") if isinstance(name, str) else bytes(name)
                if name_b.lower() not in dropped:
                    kept.append((name, value))
        next_headers: HeadersArg = kept or None
        if self.cookies._cookies:
            next_headers = self.cookies.add_to(target, next_headers)
        d = self.client._send(
            method_b, target, body, next_headers, req.timeout, self, follow - 1, chain, req.max_body
        )

        def forward(result: Any) -> None:
            if not req.called:
                if isinstance(result, FastResponse):
                    req.callback(result)
                else:
                    req.errback(result)

        d.addBoth(forward)
        return True


class _TooLarge(Exception):
    """A decoded body would be over the request's ``max_body``."""


def _decode(encoding: bytes, body: bytes, limit: int) -> bytes:
    """
    ``body`` without its ``Content-Encoding`` (gzip, deflate; several
    codings in order; identity and unknown ones are left as they are),
    never more than ``limit`` bytes at any step (a small body that
    inflates to gigabytes stops there).

    :raise _TooLarge: past ``limit``.
    """
    for coding in reversed([c.strip().lower() for c in encoding.split(b",")]):
        if coding in (b"gzip", b"x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, limit)
        elif coding == b"deflate":
            try:
                body = _inflate(body, zlib.MAX_WBITS, limit)
            except zlib.error:
                # Some servers send raw deflate without the zlib wrapper.
                body = _inflate(body, -zlib.MAX_WBITS, limit)
    return body


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """``zlib.decompress(data, wbits)``, refused past ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise _TooLarge()
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


def _address(url: str) -> str:
    return urlsplit(url).netloc
