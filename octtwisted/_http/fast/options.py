"""
The per-request options (``params=``, ``data=``, ``json=``, ``auth=``),
turned into the URL, body and headers of a request. Only requests that use
one come here.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Union
from urllib.parse import urlencode

from octtwisted._http.fast.errors import HTTPError

HeadersArg = Union[Mapping[Any, Any], Iterable[tuple[Any, Any]], None]


#: The per-request options the bare client takes.
CLIENT_OPTIONS = frozenset({"params", "data", "json", "auth"})


def apply_options(
    url: str,
    body: bytes | None,
    headers: HeadersArg,
    options: dict[str, Any],
    allowed: frozenset[str],
) -> tuple[str, bytes | None, HeadersArg]:
    """
    ``params=``, ``data=``, ``json=`` and ``auth=`` turned into the URL,
    body and headers to send.
    """
    unknown = set(options) - allowed
    if unknown:
        raise HTTPError(f"unknown request option(s): {', '.join(sorted(unknown))}")
    extra: list[tuple[Any, Any]] = []
    params = options.get("params")
    if params:
        query = urlencode(list(params.items()) if isinstance(params, Mapping) else list(params), doseq=True)
        base, _, fragment = url.partition("#")
        url = base + ("&" if "?" in base else "?") + query
    given = [name for name in ("data", "json") if options.get(name) is not None]
    if given and body is not None or len(given) > 1:
        raise HTTPError("give only one of body, data= and json=")
    data = options.get("data")
    if data is not None:
        if isinstance(data, str):
            body = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            body = bytes(data)
        else:
            pairs = list(data.items()) if isinstance(data, Mapping) else list(data)
            body = urlencode(pairs, doseq=True).encode("ascii")
            extra.append((b"Content-Type", b"application/x-www-form-urlencoded"))
    if options.get("json") is not None:
        import orjson

        body = orjson.dumps(options["json"])
        extra.append((b"Content-Type", b"application/json"))
    auth = options.get("auth")
    if auth is not None:
        import base64

        user, password = auth
        user_b = user.encode("utf-8") if isinstance(user, str) else bytes(user)
        password_b = password.encode("utf-8") if isinstance(password, str) else bytes(password)
        extra.append((b"Authorization", b"Basic " + base64.b64encode(user_b + b":" + password_b)))
    if extra:
        given_headers = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        names = {(n.encode("latin-1") if isinstance(n, str) else bytes(n)).lower() for n, _ in given_headers}
        headers = given_headers + [(n, v) for n, v in extra if n.lower() not in names]
    return url, body, headers
