"""
Per-request statistics: every request made through the turret's HTTP
clients (``self.fast_http``, a ``FastSession``, ``self.http``), counted and
timed under a name (``name=``, or ``METHOD /path`` without the query).

This module holds the rows a run's summary shows (:class:`RequestRow`,
:class:`RequestFailureRow`): what the summary table, ``--summary-json``
(key ``requests`` and ``request_failures``) and the HTML report read.
"""

from __future__ import annotations

from typing import Any

import attrs

from octtwisted._stats.histogram import TimerStats

#: The name of the row that counts the requests past the cardinality guard.
OTHER_NAMES = "(other names)"


@attrs.frozen
class RequestRow:
    """
    The figures of one request name over a run.

    :ivar method: the HTTP method (``GET``...; several joined by ``,`` when
        one name was used with more than one method).
    :ivar name: the request's name.
    :ivar requests: how many requests were made under the name.
    :ivar failures: how many of them failed (no response, or status >= 400).
    :ivar requests_per_second: ``requests`` per firing second.
    :ivar time: the distribution of the requests' times (failures
        included), in seconds; None when none was timed.
    :ivar average_bytes: the mean size of the response bodies, in bytes
        (0.0 when no response was read).
    :ivar statuses: each status code seen with its count, most frequent
        first (a request that got no response has no status).
    """

    method: str
    name: str
    requests: int
    failures: int
    requests_per_second: float
    time: TimerStats | None
    average_bytes: float
    statuses: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict (times in seconds)."""
        return {
            "method": self.method,
            "name": self.name,
            "requests": self.requests,
            "failures": self.failures,
            "requests_per_second": self.requests_per_second,
            "time": None if self.time is None else self.time.to_dict(),
            "average_bytes": self.average_bytes,
            "statuses": {str(status): count for status, count in self.statuses},
        }


@attrs.frozen
class RequestFailureRow:
    """
    One reason requests of a name failed, and how often.

    :ivar method: the HTTP method.
    :ivar name: the request's name.
    :ivar reason: why (``HTTP 503``, ``ConnectionRefusedError``,
        ``timeout after 30 s``...).
    :ivar count: how many requests failed so.
    """

    method: str
    name: str
    reason: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict."""
        return {
            "method": self.method, "name": self.name,
            "reason": self.reason, "count": self.count,
        }
