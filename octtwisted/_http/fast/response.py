"""
:class:`FastResponse`, and the parsing of a raw response head (done only
when someone asks for the headers).
"""

from __future__ import annotations

from typing import Any

import orjson

#: ``history`` of a response that was not redirected (shared, never changed).
_NO_HISTORY: tuple["FastResponse", ...] = ()


def parse_head(head: bytes) -> list[tuple[bytes, bytes]]:
    """
    The header fields of the final response at the start of ``head`` (raw
    bytes the parser has already accepted, possibly followed by body
    bytes, possibly preceded by interim 1xx responses), names lowercased.
    """
    start = 0
    while True:
        end = head.find(b"\r\n\r\n", start)
        if end < 0:
            end = len(head)
        block = head[start:end]
        status_line, _, fields = block.partition(b"\r\n")
        code = status_line.split(None, 2)[1:2]
        if code and code[0][:1] == b"1" and code[0] != b"101" and end < len(head):
            start = end + 4
            continue
        break
    headers: list[tuple[bytes, bytes]] = []
    if not fields:
        return headers
    for line in fields.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and headers:
            # A folded continuation of the previous field.
            name, value = headers[-1]
            headers[-1] = (name, (value + b" " + line.strip()).strip())
            continue
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return headers


def header_count(head: bytes) -> int:
    """
    At most how many header fields the final response at the start of
    ``head`` has (interim 1xx responses skipped, as :func:`parse_head`
    does; a folded line counts as one more; lines may end in LF alone).
    """
    start = 0
    while True:
        end, gap = head.find(b"\r\n\r\n", start), 4
        if end < 0:
            end, gap = head.find(b"\n\n", start), 2
            if end < 0:
                return head.count(b"\n", start)
        code = head[start:end].split(None, 2)[1:2]
        if code and code[0][:1] == b"1" and code[0] != b"101" and end + gap < len(head):
            start = end + gap
            continue
        return head.count(b"\n", start, end)


class FastResponse:
    """
    A complete HTTP response.

    :ivar code: the status code (also ``status_code``).
    :ivar headers: ``(name, value)`` pairs in the order received, names
        lowercased, both ``bytes``. (Responses read from the network keep
        the raw header block and split it on first use, since most load
        scripts only look at the status and body.)
    :ivar body: the whole body (``b""`` when there is none; also
        ``content``), decoded if it came with ``Content-Encoding: gzip``
        or ``deflate`` and was fetched through a session.
    :ivar url: the URL this response answers (set by a session; ``None``
        from the bare client).
    :ivar history: the redirect responses that led here, oldest first
        (an empty tuple when there was no redirect).

    ``FastResponse(code, headers, body)`` makes one by hand (for fakes);
    the client passes ``headers=None`` and the raw header block instead.
    """

    __slots__ = ("code", "body", "url", "history", "_headers", "_head")

    def __init__(
        self,
        code: int,
        headers: list[tuple[bytes, bytes]] | None,
        body: bytes,
        raw_head: bytes | None = None,
    ) -> None:
        self.code = code
        self.body = body
        self.url: str | None = None
        self.history: tuple[FastResponse, ...] | list[FastResponse] = _NO_HISTORY
        self._headers = headers
        self._head = raw_head

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = self._headers
        if headers is None:
            head, self._head = self._head, None
            headers = self._headers = parse_head(head) if head else []
        return headers

    @property
    def status_code(self) -> int:
        """The status code (the name Locust and requests use)."""
        return self.code

    @property
    def content(self) -> bytes:
        """The body (the name Locust and requests use)."""
        return self.body

    @property
    def redirects(self) -> int:
        """How many redirects were followed to get this response."""
        return len(self.history)

    def header(self, name: bytes | str) -> bytes | None:
        """
        The first value of header ``name`` (any case), or ``None``.
        """
        if isinstance(name, str):
            name = name.encode("latin-1")
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: bytes | str) -> list[bytes]:
        """
        Every value of header ``name`` (any case), in order.
        """
        if isinstance(name, str):
            name = name.encode("latin-1")
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def text(self) -> str:
        """
        The body decoded as UTF-8 (undecodable bytes become U+FFFD).
        """
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """
        The body parsed as JSON (raises ``ValueError`` if it is not JSON).
        """
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return f"<FastResponse {self.code} ({len(self.body)} bytes)>"
