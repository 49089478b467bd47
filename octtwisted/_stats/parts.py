"""
Parts: what one process recorded since its last part, to be added into the
figures of another (``--processes``: each worker sends the parent a part
four times a second and once at its end). See "Parts" in
:mod:`octtwisted._stats.summary` for why the sum of the parts is exact.

:meth:`Part.to_wire` gives a JSON-ready object, :meth:`Part.from_wire`
reads one back, checking every type and every figure's consistency: it
raises :class:`ValueError`, with one line saying what is wrong, on any
malformed input. The wire format (empty collections and absent starts
left out, so a part with nothing new is ``{"transactions":0,"errors":0}``)::

    {"transactions": 12, "errors": 1,
     "error_counts": {"HTTP 503": 1},
     "timers": {"scriptrun_time": TIMER, "login": TIMER},
     "starts": {"planned": 12, "started": 12, "dropped": 0, "lag": TIMER},
     "requests": {"GET /home": REQUESTS},
     "timer_faults": {"login": {"negative": 2, "nan": 1}}}

    TIMER = {"total_us": 250012, "min_us": 8012, "max_us": 40975,
             "us": [8012, 20480, 40960], "counts": [3, 8, 1]}

``us`` and ``counts`` are parallel lists: staged microseconds (see
:func:`~octtwisted._stats.histogram.staged_value`) and how many values
each holds; ``total_us``, ``min_us`` and ``max_us`` are exact.
``REQUESTS`` is one request name's figures since the last part (see
:meth:`~octtwisted._stats.requests.RequestTable.take_part` and
:func:`~octtwisted._stats.requests.check_part`): ``method``, the counts
``requests``, ``failures``, ``size`` (response bytes), ``sized``
(responses of known size), ``total_us``, the name's ``min_us`` and
``max_us`` so far, its values (``us`` and ``counts``, staged to
:data:`~octtwisted._stats.requests.REQUEST_BITS` bits), and ``statuses``
and ``reasons`` (text -> count). ``timer_faults`` counts the custom
timer values counted by :class:`~octtwisted._stats.faults.TimerFaults`
since the last part: timer name -> kind (one of
:data:`~octtwisted._stats.faults.FAULT_KINDS`) -> count (at least 1).
"""

from __future__ import annotations

import reprlib
from typing import Any, Mapping, NoReturn

import attrs

from octtwisted._stats.faults import FAULT_KINDS
from octtwisted._stats.histogram import (
    HIGHEST_US,
    LOWEST_US,
    STAGING_BITS,
    Span,
    Timer,
    staged_value,
)
from octtwisted._stats.requests import check_part

_TIMER_KEYS = frozenset({"total_us", "min_us", "max_us", "us", "counts"})
_STARTS_KEYS = frozenset({"planned", "started", "dropped"})
_PART_KEYS = frozenset({"transactions", "errors"})
_PART_OPTIONAL = frozenset({"error_counts", "timers", "starts", "requests", "timer_faults"})


@attrs.frozen
class TimerPart:
    """
    One timer's values in a part.

    :ivar counts: staged microseconds -> how many values it holds (never
        empty; every count positive).
    :ivar total_us: the exact sum of the values, in microseconds.
    :ivar min_us: the exact smallest value.
    :ivar max_us: the exact largest value.
    """

    counts: Mapping[int, int]
    total_us: int
    min_us: int
    max_us: int

    @property
    def count(self) -> int:
        """How many values the part holds."""
        return sum(self.counts.values())

    @classmethod
    def take(cls, timer: Timer, merged_into: Timer | None = None) -> TimerPart | None:
        """
        What ``timer`` recorded since the last part taken from it (see
        :meth:`Timer.take_part_values`), or None if nothing.
        """
        taken = timer.take_part_values(merged_into)
        if taken is None:
            return None
        counts, span = taken
        return cls(counts, *span)

    def add_to(self, timer: Timer) -> None:
        """
        Add the values into ``timer``, as if it had recorded them now.
        """
        timer.add_values(self.counts, Span(self.total_us, self.min_us, self.max_us))

    def to_wire(self) -> dict[str, Any]:
        """The part as a JSON-ready dict (see the module's docstring)."""
        return {
            "total_us": self.total_us,
            "min_us": self.min_us,
            "max_us": self.max_us,
            "us": list(self.counts),
            "counts": list(self.counts.values()),
        }

    @classmethod
    def from_wire(cls, obj: object, where: str = "timer") -> TimerPart:
        """
        Read :meth:`to_wire`'s dict; ValueError if malformed.
        """
        fields = _fields(obj, where, _TIMER_KEYS)
        values = _whole_numbers(fields["us"], f"{where}.us")
        counts = _whole_numbers(fields["counts"], f"{where}.counts")
        if not values:
            _fail(where, "no values")
        if len(values) != len(counts):
            _fail(where, f"{len(values)} values but {len(counts)} counts")
        low, high = min(values), max(values)
        if low < LOWEST_US or high > HIGHEST_US:
            _fail(f"{where}.us", f"a value outside {LOWEST_US}..{HIGHEST_US}")
        if min(counts) < 1:
            _fail(f"{where}.counts", "a count below 1")
        for value in values:  # staged_value(value) == value, inlined
            shift = value.bit_length() - STAGING_BITS
            if shift > 0 and value & ((1 << shift) - 1):
                _fail(f"{where}.us", f"{value} is not a staged value")
        table = dict(zip(values, counts))
        if len(table) != len(values):
            _fail(f"{where}.us", "a value given twice")
        min_us = _whole(fields["min_us"], f"{where}.min_us", LOWEST_US, HIGHEST_US)
        max_us = _whole(fields["max_us"], f"{where}.max_us", LOWEST_US, HIGHEST_US)
        if min_us > max_us or staged_value(min_us) != low or staged_value(max_us) != high:
            _fail(where, f"min_us {min_us} and max_us {max_us} do not match the values")
        total_us = _whole(fields["total_us"], f"{where}.total_us")
        n = sum(counts)
        least, most = (min_us, max_us) if n == 1 else (
            min_us + max_us + (n - 2) * min_us,
            min_us + max_us + (n - 2) * max_us,
        )
        if not least <= total_us <= most or (n == 1 and min_us != max_us):
            _fail(where, f"total_us {total_us} does not fit {n} values in {min_us}..{max_us}")
        return cls(table, total_us, min_us, max_us)


@attrs.frozen
class StartsPart:
    """
    The open model's starts in a part (see
    :class:`~octtwisted._stats.starts.StartStats`): how many more were
    planned, started and dropped, and the start lags of those started.

    :ivar lag: one lag per start (None without starts).
    """

    planned: int
    started: int
    dropped: int
    lag: TimerPart | None = None

    def to_wire(self) -> dict[str, Any]:
        """The part as a JSON-ready dict (see the module's docstring)."""
        wire: dict[str, Any] = {
            "planned": self.planned,
            "started": self.started,
            "dropped": self.dropped,
        }
        if self.lag is not None:
            wire["lag"] = self.lag.to_wire()
        return wire

    @classmethod
    def from_wire(cls, obj: object, where: str = "starts") -> StartsPart:
        """
        Read :meth:`to_wire`'s dict; ValueError if malformed.
        """
        fields = _fields(obj, where, _STARTS_KEYS, frozenset({"lag"}))
        planned, started, dropped = (
            _whole(fields[key], f"{where}.{key}") for key in ("planned", "started", "dropped")
        )
        lag = None if "lag" not in fields else TimerPart.from_wire(fields["lag"], f"{where}.lag")
        if (0 if lag is None else lag.count) != started:
            _fail(where, f"{started} starts but {0 if lag is None else lag.count} lags")
        return cls(planned, started, dropped, lag)


@attrs.frozen
class Part:
    """
    What a :class:`~octtwisted._stats.summary.RunStats` recorded since its
    last part (:meth:`~octtwisted._stats.summary.RunStats.take_part`), to
    add into another (:meth:`~octtwisted._stats.summary.RunStats.add_part`).

    :ivar transactions: results recorded.
    :ivar errors: how many of them were errors.
    :ivar error_counts: error text -> how many more times it was counted
        (its sum is ``errors``; ``(other errors)`` past the distinct cap).
    :ivar timers: timer name -> its values; the transaction times under
        ``scriptrun_time``, a timer without new values left out.
    :ivar starts: the open model's starts, None without them or when
        nothing happened to them.
    :ivar requests: the per-request figures (request name -> figures, see
        :meth:`~octtwisted._stats.requests.RequestTable.take_part`).
    :ivar timer_faults: custom timer name -> kind -> count: the values
        counted by :class:`~octtwisted._stats.faults.TimerFaults`.
    """

    transactions: int
    errors: int
    error_counts: Mapping[str, int] = attrs.field(factory=dict)
    timers: Mapping[str, TimerPart] = attrs.field(factory=dict)
    starts: StartsPart | None = None
    requests: Mapping[str, Any] = attrs.field(factory=dict)
    timer_faults: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the part holds nothing new."""
        return (not self.transactions and not self.timers and self.starts is None
                and not self.requests and not self.timer_faults)

    def to_wire(self) -> dict[str, Any]:
        """
        The part as a JSON-ready object (see the module's docstring).
        """
        wire: dict[str, Any] = {"transactions": self.transactions, "errors": self.errors}
        if self.error_counts:
            wire["error_counts"] = dict(self.error_counts)
        if self.timers:
            wire["timers"] = {name: timer.to_wire() for name, timer in self.timers.items()}
        if self.starts is not None:
            wire["starts"] = self.starts.to_wire()
        if self.requests:
            wire["requests"] = dict(self.requests)
        if self.timer_faults:
            wire["timer_faults"] = {name: dict(kinds) for name, kinds in self.timer_faults.items()}
        return wire

    @classmethod
    def from_wire(cls, obj: object) -> Part:
        """
        Read :meth:`to_wire`'s object (after a JSON round trip).

        :raises ValueError: with one line saying what is malformed.
        """
        fields = _fields(obj, "part", _PART_KEYS, _PART_OPTIONAL)
        transactions = _whole(fields["transactions"], "part.transactions")
        errors = _whole(fields["errors"], "part.errors", high=transactions)
        error_counts = {}
        for error, count in _fields(fields.get("error_counts", {}), "part.error_counts").items():
            if not error:
                _fail("part.error_counts", "an empty error text")
            error_counts[error] = _whole(count, f"part.error_counts[{_show(error)}]", low=1)
        if sum(error_counts.values()) != errors:
            _fail("part.error_counts", f"they add up to {sum(error_counts.values())}, not {errors}")
        timers = {
            name: TimerPart.from_wire(timer, f"part.timers[{_show(name)}]")
            for name, timer in _fields(fields.get("timers", {}), "part.timers").items()
        }
        starts = fields.get("starts")
        return cls(
            transactions,
            errors,
            error_counts,
            timers,
            None if starts is None else StartsPart.from_wire(starts, "part.starts"),
            check_part(fields.get("requests", {})),
            _timer_faults(fields.get("timer_faults", {})),
        )


def _timer_faults(obj: object) -> dict[str, dict[str, int]]:
    """A part's ``timer_faults``: timer name -> kind -> count."""
    faults = {}
    for name, kinds in _fields(obj, "part.timer_faults").items():
        where = f"part.timer_faults[{_show(name)}]"
        counts = _fields(kinds, where, frozenset(), frozenset(FAULT_KINDS))
        if not counts:
            _fail(where, "no counts")
        faults[name] = {kind: _whole(count, f"{where}.{kind}", low=1)
                        for kind, count in counts.items()}
    return faults


# Reading the wire.

_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 40


def _show(obj: object) -> str:
    """``obj``'s repr, short and on one line."""
    return _SHOW.repr(obj)


def _fail(where: str, message: str) -> NoReturn:
    raise ValueError(f"malformed part: {where}: {message}")


def _fields(
    obj: object,
    where: str,
    required: frozenset[str] | None = None,
    optional: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """
    ``obj`` as a dict with string keys: exactly ``required`` and some of
    ``optional`` (any keys, without ``required``).
    """
    if not isinstance(obj, dict):
        _fail(where, f"expected an object, got {_show(obj)}")
    for key in obj:
        if not isinstance(key, str):
            _fail(where, f"a key that is not a string: {_show(key)}")
    if required is not None:
        missing = required - obj.keys()
        if missing:
            _fail(where, f"missing {', '.join(sorted(missing))}")
        unknown = obj.keys() - required - optional
        if unknown:
            _fail(where, f"unknown {', '.join(_show(key) for key in sorted(unknown))}")
    return obj


def _whole(obj: object, where: str, low: int = 0, high: int | None = None) -> int:
    """``obj`` as a whole number in ``low..high`` (a bool is none)."""
    if type(obj) is not int or obj < low or (high is not None and obj > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        _fail(where, f"expected a whole number {bounds}, got {_show(obj)}")
    return obj


def _whole_numbers(obj: object, where: str) -> list[int]:
    """``obj`` as a list of whole numbers (bounds are checked by the caller)."""
    if not isinstance(obj, list) or not set(map(type, obj)) <= {int}:
        _fail(where, f"expected a list of whole numbers, got {_show(obj)}")
    return obj
