"""
:class:`CookieJar`: the cookies of one :class:`~octtwisted._http.fast.session.FastSession`.

It follows RFC 6265 where a load test needs it: a cookie is kept per
domain (host-only unless the server gave ``Domain``), path and name;
``Path`` is matched, ``Secure`` cookies go only over ``https://``,
``Max-Age`` and ``Expires`` end a cookie (``Max-Age=0`` or a date in the
past deletes it). Not done: the public-suffix list, ``SameSite`` (there is
no browser context), and the limits on cookie counts and sizes.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any, Iterator
from urllib.parse import urlsplit

import attrs

from octtwisted._http.fast.options import HeadersArg


@attrs.frozen
class Cookie:
    """
    One cookie as the jar keeps it.

    :ivar expires: when it ends, in the jar clock's seconds, or ``None``
        for a session cookie.
    """

    name: str
    value: str
    domain: str
    path: str = "/"
    host_only: bool = True
    secure: bool = False
    expires: float | None = None

    def matches(self, host: str, path: str, secure: bool) -> bool:
        """
        Whether this cookie goes with a request to ``host`` and ``path``.
        """
        if self.secure and not secure:
            return False
        if host != self.domain and (self.host_only or not host.endswith("." + self.domain)):
            return False
        cookie_path = self.path
        if path == cookie_path:
            return True
        return path.startswith(cookie_path) and (cookie_path.endswith("/") or path[len(cookie_path)] == "/")


class CookieJar:
    """
    The cookies of one session.

    :param clock: an ``IReactorTime`` whose ``seconds()`` is the time of day
        (the reactor), for ``Expires`` and ``Max-Age``.
    """

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._cookies: dict[tuple[str, str, str], Cookie] = {}

    def __len__(self) -> int:
        return len(self._cookies)

    def __iter__(self) -> Iterator[Cookie]:
        return iter(list(self._cookies.values()))

    def get(self, name: str, default: str | None = None) -> str | None:
        """
        The value of the (first) cookie called ``name``, whatever its
        domain, or ``default``.
        """
        for cookie in self._cookies.values():
            if cookie.name == name:
                return cookie.value
        return default

    def set(self, name: str, value: str, domain: str, path: str = "/") -> None:
        """
        Add a cookie by hand (sent to ``domain`` and its sub-domains).
        """
        domain = domain.lower().lstrip(".")
        self._cookies[(domain, path, name)] = Cookie(name, value, domain, path, host_only=False)

    def clear(self) -> None:
        """Forget every cookie."""
        self._cookies.clear()

    def update(self, url: str, set_cookies: list[bytes]) -> None:
        """
        Take the ``Set-Cookie`` values of a response to ``url``.
        """
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        request_path = parts.path or "/"
        now = self._clock.seconds()
        for raw in set_cookies:
            cookie = _parse_set_cookie(raw.decode("latin-1"), host, request_path, now)
            if cookie is None:
                continue
            key = (cookie.domain, cookie.path, cookie.name)
            if cookie.expires is not None and cookie.expires <= now:
                self._cookies.pop(key, None)
            else:
                self._cookies[key] = cookie

    def header(self, url: str) -> str | None:
        """
        The ``Cookie`` header value for a request to ``url``, or ``None``.
        """
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        path = parts.path or "/"
        secure = parts.scheme.lower() == "https"
        now = self._clock.seconds()
        chosen = []
        for key, cookie in list(self._cookies.items()):
            if cookie.expires is not None and cookie.expires <= now:
                del self._cookies[key]
            elif cookie.matches(host, path, secure):
                chosen.append(cookie)
        if not chosen:
            return None
        # Longer paths first, as RFC 6265 asks.
        chosen.sort(key=lambda c: -len(c.path))
        return "; ".join(f"{c.name}={c.value}" for c in chosen)

    def add_to(self, url: str, headers: HeadersArg) -> HeadersArg:
        """
        ``headers`` plus the ``Cookie`` header for ``url``, unless the
        caller gave one.
        """
        value = self.header(url)
        if value is None:
            return headers
        pairs = list(headers.items()) if hasattr(headers, "items") else list(headers or ())  # type: ignore[union-attr]
        for name, _ in pairs:
            if (name.lower() if isinstance(name, str) else bytes(name).lower().decode("latin-1")) == "cookie":
                return headers
        pairs.append((b"Cookie", value.encode("latin-1")))
        return pairs


def _parse_set_cookie(text: str, host: str, request_path: str, now: float) -> Cookie | None:
    """
    One ``Set-Cookie`` value, as RFC 6265 section 5.2 reads it; ``None`` if
    it is to be ignored.
    """
    pair, *attributes = text.split(";")
    name, eq, value = pair.partition("=")
    name = name.strip()
    if not eq or not name:
        return None
    domain = host
    host_only = True
    default_path = request_path[: request_path.rfind("/")] or "/" if request_path.startswith("/") else "/"
    path = default_path
    secure = False
    expires: float | None = None
    max_age: float | None = None
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        key = key.strip().lower()
        val = val.strip()
        if key == "domain" and val:
            wanted = val.lower().lstrip(".")
            if host != wanted and not host.endswith("." + wanted):
                return None  # a domain the host is not in
            domain, host_only = wanted, False
        elif key == "path" and val.startswith("/"):
            path = val
        elif key == "secure":
            secure = True
        elif key == "max-age":
            try:
                max_age = float(int(val))
            except ValueError:
                continue
        elif key == "expires":
            try:
                expires = parsedate_to_datetime(val).timestamp()
            except (TypeError, ValueError, IndexError):
                continue
    if max_age is not None:
        expires = now + max_age
    return Cookie(name, value.strip(), domain, path, host_only, secure, expires)
