"""
The ``max_response_*`` config keys: how much of a response either HTTP
client reads before it gives the request up, so that a target that never
ends a response cannot grow the turret's memory without bound.
"""

from __future__ import annotations

import attrs

from octtwisted._core.checker import Checker

MiB = 1024 * 1024

#: Defaults of the three keys.
DEFAULT_MAX_RESPONSE_BODY = 32 * MiB
DEFAULT_MAX_RESPONSE_HEAD = 64 * 1024
DEFAULT_MAX_RESPONSE_HEADERS = 256

#: The largest value the keys take (a body limit past 1 TiB is no limit).
_MAX = 1 << 40


def size_text(size: int) -> str:
    """``size`` bytes in words: ``32 MiB``, ``64 KiB``, ``1.5 MiB``, ``100 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


def over_text(what: str, limit: int, key: str) -> str:
    """The reason of a request given up at a limit: ``response body over 32 MiB (max_response_body)``."""
    return f"response {what} over {size_text(limit)} ({key})"


@attrs.frozen
class HTTPLimits:
    """
    How much of one response the turret reads (both clients; see
    ``docs/http.rst``).

    :ivar body: the most bytes of body, as received (before any
        ``Content-Encoding`` is decoded; a decoded body is held to it too)
        (``max_response_body``).
    :ivar head: the most bytes of status line and headers, interim 1xx
        responses included (``max_response_head``).
    :ivar headers: the most header fields (``max_response_headers``).
    """

    body: int = DEFAULT_MAX_RESPONSE_BODY
    head: int = DEFAULT_MAX_RESPONSE_HEAD
    headers: int = DEFAULT_MAX_RESPONSE_HEADERS


def parse_http_limits(check: Checker) -> HTTPLimits:
    """The ``max_response_*`` keys, checked."""
    return HTTPLimits(
        body=check.integer("max_response_body", 1, _MAX, default=DEFAULT_MAX_RESPONSE_BODY),
        head=check.integer("max_response_head", 256, _MAX, default=DEFAULT_MAX_RESPONSE_HEAD),
        headers=check.integer("max_response_headers", 1, _MAX, default=DEFAULT_MAX_RESPONSE_HEADERS),
    )
