"""
Per-request statistics: every request made through the turret's HTTP
clients (``self.fast_http``, a ``FastSession``, ``self.http``), counted and
timed under a name (``name=``, or ``METHOD /path`` without the query).

This module holds the rows a run's summary shows (:class:`RequestRow`,
:class:`RequestFailureRow`): what the summary table, ``--summary-json``
(key ``requests`` and ``request_failures``) and the HTML report read.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Sequence

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
    :ivar average_bytes: the mean size of the response bodies whose size
        was measured, in bytes; None when none was (no response, or only
        responses whose length the client did not tell, as treq's chunked
        ones): never a 0 that was not measured.
    :ivar statuses: each status code seen with its count, most frequent
        first (a request that got no response has no status).
    """

    method: str
    name: str
    requests: int
    failures: int
    requests_per_second: float
    time: TimerStats | None
    average_bytes: float | None
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


# Recording.

#: Distinct names a run keeps; past it, requests count under OTHER_NAMES.
MAX_NAMES = 200

#: Distinct failure reasons kept per name; past it, OTHER_REASONS.
MAX_REASONS = 20

#: The longest failure reason kept (longer ones are cut, ending in ``...``).
MAX_REASON_LENGTH = 120

#: The reason of the failures past :data:`MAX_REASONS` for one name.
OTHER_REASONS = "(other reasons)"

#: Significant bits a request's time keeps (in whole microseconds): 9, so
#: a kept value is within 1/256 (0.4%) below the real one. Fewer than the
#: transaction timers' 11 bits: a name's values then fit in a few hundred
#: dict keys, so 200 names stay small.
REQUEST_BITS = 9

_LOWEST_US = 1
_HIGHEST_US = 3_600 * 1_000_000
#: values below this (microseconds) are kept as they are
_UNSTAGED = 1 << REQUEST_BITS
_PERCENTILES = (50.0, 90.0, 95.0, 99.0)


def request_staged(us: int) -> int:
    """``us`` rounded down to :data:`REQUEST_BITS` significant bits."""
    shift = us.bit_length() - REQUEST_BITS
    return (us >> shift) << shift if shift > 0 else us


def short_reason(reason: str) -> str:
    """``reason`` on one line, at most :data:`MAX_REASON_LENGTH` characters."""
    reason = " ".join(reason.split()) or "(no reason)"
    if len(reason) > MAX_REASON_LENGTH:
        reason = reason[: MAX_REASON_LENGTH - 3] + "..."
    return reason


def _add(into: dict[Any, int], counts: Mapping[Any, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


def value_percentiles(
    counts: Mapping[int, int], low: int, high: int, percentiles: Sequence[float]
) -> list[float]:
    """
    The ``percentiles`` (seconds) of staged values (microseconds ->
    count): for each, the top of the staging bucket that holds the value
    of its rank, clamped into ``[low, high]`` (the exact min and max), as
    an HDR histogram answers.
    """
    total = sum(counts.values())
    ranks = [max(1, int(p / 100.0 * total + 0.5)) for p in percentiles]
    found: list[float] = []
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        while len(found) < len(ranks) and seen >= ranks[len(found)]:
            width = 1 << max(0, value.bit_length() - REQUEST_BITS)
            top = min(max(value + width - 1, low), high)
            found.append(top / 1e6)
        if len(found) == len(ranks):
            break
    return found


class _Counts:
    """
    The figures of one request name that every request changes (see
    :class:`NameStats`), in Python: the twin of the compiled
    ``requestcounts.Counts``, used when it is not built (their types are
    in ``requestcounts.pyi``, which is what mypy reads for both).
    """

    __slots__ = (
        "method", "recent", "statuses", "requests", "failures", "total_us", "min_us",
        "max_us", "size", "sized",
    )


try:
    from octtwisted._stats.requestcounts import Counts, ResponseRecorder
except ImportError:  # not built (no C compiler): the same in Python, slower
    Counts = _Counts  # type: ignore[misc,assignment]
    ResponseRecorder = None  # type: ignore[misc,assignment]

#: the hot path of the fast client's requests is compiled
COMPILED = ResponseRecorder is not None


class NameStats(Counts):
    """
    The figures of one request name (mutable: the recording's own).

    The values of the requests' times are staged microseconds -> count:
    ``recent`` since the last :meth:`settle`, ``values`` before; a settle
    also adds ``recent`` into ``bucket`` (a timeline's) and ``part`` (for
    ``--processes``) when they are kept. The figures every request changes
    are those of :class:`_Counts` (compiled when it can be).
    """

    __slots__ = ("methods", "values", "bucket", "part", "reasons", "scraped")

    def __init__(self, method: str, buckets: bool, parts: bool) -> None:
        self.method = method
        #: the other methods used under the name, if any
        self.methods: set[str] | None = None
        self.recent: dict[int, int] = {}
        self.values: dict[int, int] = {}
        self.bucket: dict[int, int] | None = {} if buckets else None
        self.part: dict[int, int] | None = {} if parts else None
        self.total_us = 0
        self.min_us = _HIGHEST_US
        self.max_us = _LOWEST_US
        self.requests = 0
        self.failures = 0
        self.size = 0
        self.sized = 0
        self.statuses: dict[int, int] = {}
        self.reasons: dict[str, int] = {}
        #: once a scraper reads the name (``--metrics``): its values counted
        #: per slot of the scraper's buckets, kept up to date by
        #: :meth:`settle`, and the slot of each staged value
        self.scraped: tuple[list[int], Mapping[int, int]] | None = None

    def fail(self, reason: str) -> None:
        self.failures += 1
        reasons = self.reasons
        if reason not in reasons:
            reason = short_reason(reason)
            if reason not in reasons and len(reasons) >= MAX_REASONS:
                reason = OTHER_REASONS
        reasons[reason] = reasons.get(reason, 0) + 1

    def add_method(self, method: str) -> None:
        if self.methods is None:
            self.methods = set()
        self.methods.add(method)

    def settle(self) -> None:
        recent = self.recent
        if recent:
            _add(self.values, recent)
            if self.bucket is not None:
                _add(self.bucket, recent)
            if self.part is not None:
                _add(self.part, recent)
            scraped = self.scraped
            if scraped is not None:
                slots, slot_of = scraped
                for value, count in recent.items():
                    slots[slot_of[value]] += count
            self.recent = {}

    def method_text(self) -> str:
        if not self.methods:
            return self.method
        return ",".join(sorted(self.methods | {self.method}))

    def row(self, name: str, seconds: float) -> RequestRow:
        self.settle()
        time = None
        if self.values:
            p50, p90, p95, p99 = value_percentiles(
                self.values, self.min_us, self.max_us, _PERCENTILES
            )
            count = sum(self.values.values())
            time = TimerStats(
                count=count, min=self.min_us / 1e6, mean=self.total_us / count / 1e6,
                p50=p50, p90=p90, p95=p95, p99=p99, max=self.max_us / 1e6,
            )
        return RequestRow(
            method=self.method_text(),
            name=name,
            requests=self.requests,
            failures=self.failures,
            requests_per_second=self.requests / seconds if seconds > 0 else 0.0,
            time=time,
            average_bytes=self.size / self.sized if self.sized else None,
            statuses=tuple(sorted(self.statuses.items(), key=lambda item: (-item[1], item[0]))),
        )


class RequestTable:
    """
    Every request of a run, by name (see the module's doc): the table the
    HTTP clients record into (:meth:`record`, on the reactor thread), and
    the summary's rows are made of.

    Memory: per name, its values as staged microseconds -> count (at most
    a few hundred keys per factor of 2 between the fastest and slowest
    request), a few counts, its status codes and at most
    :data:`MAX_REASONS` reasons; at most :data:`MAX_NAMES` names plus
    :data:`OTHER_NAMES`.

    A blocking script's thread may ask which row a request will be counted
    in (:meth:`admit`), before its count reaches the reactor's thread: a
    name admitted so is reserved, and takes one of the :data:`MAX_NAMES`
    places at once.

    :param warn: called once, with the name that did not fit, when the
        first name past :data:`MAX_NAMES` comes.
    """

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self.names: dict[str, NameStats] = {}
        self._warn = warn
        self._warned = False
        #: guards the choice of a new name's row (:meth:`admit` from any
        #: thread, :meth:`_entry` on the reactor's); never taken for a
        #: name already in the table
        self._lock = threading.Lock()
        #: names admitted from another thread, not yet in ``names``
        self._reserved: set[str] = set()
        self._buckets = False
        self._parts = False
        #: per name, what the last part took: (requests, failures, size,
        #: sized, total_us, statuses, reasons)
        self._taken: dict[str, tuple[int, int, int, int, int, dict[int, int], dict[str, int]]] = {}
        #: ``record_response(name, method, seconds, status, size)``: what
        #: :meth:`record` does for a response (the hot path of the fast
        #: client), compiled when it can be: a response of a name already
        #: in the table, of its method, with a status below 400 is counted
        #: in C; anything else goes to :meth:`record`.
        self.record_response: Callable[..., str] = (
            self.record if ResponseRecorder is None else ResponseRecorder(self.names, self.record)
        )

    def __len__(self) -> int:
        return len(self.names)

    def admit(self, name: str) -> str:
        """
        The name a request named ``name`` will be counted under
        (:data:`OTHER_NAMES` past the cardinality guard), from any thread:
        a new name that fits is reserved, so that its count, handed later
        to the reactor's thread, gets its own row whatever new names come
        in between.
        """
        if name in self.names:
            return name
        with self._lock:
            if name in self.names or name in self._reserved or name == OTHER_NAMES:
                return name
            if len(self.names) + len(self._reserved) < MAX_NAMES:
                self._reserved.add(name)
                return name
            return OTHER_NAMES

    def _entry(self, name: str, method: str) -> NameStats:
        names = self.names
        warn = None
        with self._lock:
            reserved = self._reserved
            if name in reserved:
                reserved.discard(name)
            elif len(names) + len(reserved) >= MAX_NAMES and name != OTHER_NAMES:
                if not self._warned:
                    self._warned = True
                    warn = name
                name = OTHER_NAMES
            found = names.get(name)
            if found is None:
                found = names[name] = NameStats(method, self._buckets, self._parts)
        if warn is not None and self._warn is not None:
            self._warn(warn)
        return found

    def record(
        self,
        name: str,
        method: str,
        seconds: float,
        status: int = 0,
        size: int = -1,
        reason: str | None = None,
    ) -> str:
        """
        Count one request (the hot path); return the name it is counted
        under (:data:`OTHER_NAMES` past the cardinality guard).

        :param name: the request's name.
        :param method: its HTTP method (``GET``...).
        :param seconds: how long it took (failures too).
        :param status: the response's status code, 0 without a response.
        :param size: the response body's bytes, -1 when not known.
        :param reason: why it failed; None for a response (which fails,
            as ``HTTP <status>``, when its status is >= 400).
        """
        entry = self.names.get(name)
        if entry is None:
            entry = self._entry(name, method)
            if entry is self.names.get(OTHER_NAMES):
                name = OTHER_NAMES
        entry.requests += 1
        us = int(seconds * 1e6 + 0.5)
        if us < _LOWEST_US:
            us = _LOWEST_US
        elif us > _HIGHEST_US:
            us = _HIGHEST_US
        if us < _UNSTAGED:
            key = us
        else:
            shift = us.bit_length() - REQUEST_BITS
            key = (us >> shift) << shift
        recent = entry.recent
        recent[key] = recent.get(key, 0) + 1
        entry.total_us += us
        if us < entry.min_us:
            entry.min_us = us
        if us > entry.max_us:
            entry.max_us = us
        if status:
            statuses = entry.statuses
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 400 and reason is None:
                reason = f"HTTP {status}"
        if size >= 0:
            entry.size += size
            entry.sized += 1
        if method != entry.method:
            entry.add_method(method)
        if reason is not None:
            entry.fail(reason)
        return name

    # Reading.

    def rows(self, seconds: float) -> tuple[RequestRow, ...]:
        """
        One row per name, busiest first (then by name).

        :param seconds: the firing time, for the rates.
        """
        rows = [entry.row(name, seconds) for name, entry in self.names.items()]
        rows.sort(key=lambda row: (-row.requests, row.name))
        return tuple(rows)

    def failure_rows(self) -> tuple[RequestFailureRow, ...]:
        """Every (name, reason) that failed requests, most frequent first."""
        rows = [
            RequestFailureRow(entry.method_text(), name, reason, count)
            for name, entry in self.names.items()
            for reason, count in entry.reasons.items()
        ]
        rows.sort(key=lambda row: (-row.count, row.name, row.reason))
        return tuple(rows)

    def value(self, name: str, stat: str, percentile: float | None) -> float | None:
        """
        A statistic of one name (see :mod:`octtwisted._core.thresholds`):
        ``count``, ``rate`` needs the firing time so is not here,
        ``fail_rate``, ``failures``, ``min``, ``max``, ``mean``, ``p``
        (seconds); None when the name has no requests.
        """
        entry = self.names.get(name)
        if entry is None or not entry.requests:
            return None
        if stat == "count":
            return float(entry.requests)
        if stat == "failures":
            return float(entry.failures)
        if stat == "fail_rate":
            return entry.failures / entry.requests
        entry.settle()
        if stat == "min":
            return entry.min_us / 1e6
        if stat == "max":
            return entry.max_us / 1e6
        if stat == "mean":
            return entry.total_us / entry.requests / 1e6
        assert percentile is not None, stat
        return value_percentiles(entry.values, entry.min_us, entry.max_us, [percentile])[0]

    # Over time (a timeline).

    def track_buckets(self) -> None:
        """From now on, keep what :meth:`take_bucket` returns."""
        self._buckets = True
        for entry in self.names.values():
            entry.bucket = {}

    def take_bucket(self) -> dict[str, tuple[int, dict[int, int]]]:
        """
        Name -> (requests, staged values) since the last call, for the
        names that had any.
        """
        taken: dict[str, tuple[int, dict[int, int]]] = {}
        for name, entry in self.names.items():
            entry.settle()
            bucket = entry.bucket
            if bucket:
                entry.bucket = {}
                taken[name] = (sum(bucket.values()), bucket)
        return taken

    # Parts (--processes).

    def take_part(self) -> dict[str, Any]:
        """
        What was recorded (or added) since the last call, by name, as a
        JSON-ready object (see :func:`check_part`); {} if nothing.
        """
        first = not self._parts
        self._parts = True
        wire: dict[str, Any] = {}
        for name, entry in self.names.items():
            if first:
                entry.settle()
                counts = entry.values
                entry.part = {}
            else:
                entry.settle()
                counts = entry.part or {}
                entry.part = {}
            requests, failures, size, sized, total_us, statuses, reasons = self._taken.get(
                name, _NOTHING_TAKEN
            )
            if entry.requests == requests:
                continue
            wire[name] = {
                "method": entry.method_text(),
                "requests": entry.requests - requests,
                "failures": entry.failures - failures,
                "size": entry.size - size,
                "sized": entry.sized - sized,
                "total_us": entry.total_us - total_us,
                "min_us": entry.min_us,
                "max_us": entry.max_us,
                "us": list(counts),
                "counts": list(counts.values()),
                "statuses": {
                    str(code): n - statuses.get(code, 0)
                    for code, n in entry.statuses.items() if n != statuses.get(code, 0)
                },
                "reasons": {
                    reason: n - reasons.get(reason, 0)
                    for reason, n in entry.reasons.items() if n != reasons.get(reason, 0)
                },
            }
            self._taken[name] = (
                entry.requests, entry.failures, entry.size, entry.sized, entry.total_us,
                dict(entry.statuses), dict(entry.reasons),
            )
        return wire

    def add_part(self, part: Mapping[str, Any]) -> None:
        """
        Add another process's part (checked by :func:`check_part`), as if
        its requests were recorded here now; the cardinality guard applies
        to the names of the merged table.
        """
        for name, figures in part.items():
            methods = figures["method"].split(",")
            entry = self.names.get(name)
            if entry is None:
                entry = self._entry(name, methods[0])
            for method in methods:
                if method != entry.method:
                    entry.add_method(method)
            entry.requests += figures["requests"]
            entry.failures += figures["failures"]
            entry.size += figures["size"]
            entry.sized += figures["sized"]
            entry.total_us += figures["total_us"]
            entry.min_us = min(entry.min_us, figures["min_us"])
            entry.max_us = max(entry.max_us, figures["max_us"])
            _add(entry.recent, dict(zip(figures["us"], figures["counts"])))
            _add(entry.statuses, {int(code): n for code, n in figures["statuses"].items()})
            for reason, count in figures["reasons"].items():
                if reason in entry.reasons or len(entry.reasons) < MAX_REASONS:
                    entry.reasons[reason] = entry.reasons.get(reason, 0) + count
                else:
                    entry.reasons[OTHER_REASONS] = entry.reasons.get(OTHER_REASONS, 0) + count

    def nbytes(self) -> int:
        """About how many bytes the table holds (for the bench)."""
        import sys

        total = sys.getsizeof(self.names)
        for name, entry in self.names.items():
            total += sys.getsizeof(name) + sys.getsizeof(entry)
            for held in (entry.recent, entry.values, entry.bucket or {}, entry.part or {},
                         entry.statuses):
                total += sys.getsizeof(held) + sum(
                    sys.getsizeof(k) + sys.getsizeof(v) for k, v in held.items()
                )
            total += sum(sys.getsizeof(k) + 32 for k in entry.reasons)
        return total


_NOTHING_TAKEN: tuple[int, int, int, int, int, dict[int, int], dict[str, int]] = (
    0, 0, 0, 0, 0, {}, {},
)

_PART_KEYS = frozenset({
    "method", "requests", "failures", "size", "sized", "total_us", "min_us", "max_us",
    "us", "counts", "statuses", "reasons",
})


def check_part(obj: object) -> dict[str, Any]:
    """
    ``obj`` (a part's ``requests``, after a JSON round trip) checked:
    name -> figures with the keys :meth:`RequestTable.take_part` writes,
    whole numbers where they belong, consistent counts.

    :raises ValueError: one line saying what is malformed.
    """

    def fail(where: str, message: str) -> None:
        raise ValueError(f"malformed part: requests{where}: {message}")

    def whole(value: object, where: str, low: int = 0) -> int:
        if type(value) is not int or value < low:
            fail(where, f"expected a whole number >= {low}, got {value!r:.40}")
        assert isinstance(value, int)
        return value

    if not isinstance(obj, dict):
        fail("", "expected an object")
    assert isinstance(obj, dict)
    for name, figures in obj.items():
        where = f"[{name!r:.40}]"
        if not isinstance(name, str) or not name:
            fail(where, "a name must be a non-empty string")
        if not isinstance(figures, dict) or set(figures) != _PART_KEYS:
            fail(where, f"expected an object with the keys {', '.join(sorted(_PART_KEYS))}")
        if not isinstance(figures["method"], str) or not figures["method"]:
            fail(where, "method must be a non-empty string")
        requests = whole(figures["requests"], where + ".requests", 1)
        if whole(figures["failures"], where + ".failures") > requests:
            fail(where, "more failures than requests")
        whole(figures["size"], where + ".size")
        if whole(figures["sized"], where + ".sized") > requests:
            fail(where, "more sized responses than requests")
        whole(figures["total_us"], where + ".total_us")
        low = whole(figures["min_us"], where + ".min_us", _LOWEST_US)
        high = whole(figures["max_us"], where + ".max_us", _LOWEST_US)
        us, counts = figures["us"], figures["counts"]
        if not isinstance(us, list) or not isinstance(counts, list) or len(us) != len(counts):
            fail(where, "us and counts must be lists of the same length")
        values = [whole(v, where + ".us", _LOWEST_US) for v in us]
        numbers = [whole(c, where + ".counts", 1) for c in counts]
        if len(set(values)) != len(values) or any(request_staged(v) != v for v in values):
            fail(where + ".us", "values must be distinct staged values")
        if values and (min(values) < request_staged(low) or max(values) > high):
            fail(where, "values outside min_us..max_us")
        if sum(numbers) > requests:
            fail(where, "more values than requests")
        for key, expected in (("statuses", "status code"), ("reasons", "reason")):
            table = figures[key]
            if not isinstance(table, dict):
                fail(where + "." + key, "expected an object")
            for label, count in table.items():
                whole(count, f"{where}.{key}[{label!r:.40}]", 1)
                if key == "statuses" and not (isinstance(label, str) and label.isdigit()):
                    fail(where + "." + key, f"{label!r:.40} is not a {expected}")
    return obj
