"""
A run over time: transactions, errors, active cannons and timer
percentiles, one point per bucket of time, in bounded memory.

Every :data:`TICK` seconds the timeline takes what
:class:`~octtwisted._stats.summary.RunStats` recorded since the last tick
(counts, and each timer's values as staged microseconds -> count, so no
value is recorded twice). Ticks add up into the open bucket until it spans
the current bucket width; then its percentiles are computed, exactly (to
the staging's 0.1 %), and it becomes a point.

Memory: a point is a few floats per column in :mod:`array` columns
(5 + 4 per timer). When the timeline holds :data:`MAX_POINTS` points, the
points are merged two by two and the bucket width doubles, so a run of any
length holds at most :data:`MAX_POINTS` points. A merged point adds its
counts; its p50 is the two p50s' mean weighted by their counts, its p95 and
p99 the larger of the two (an upper bound). Points made after the width
doubled are exact again.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Callable

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from octtwisted._stats.summary import SCRIPTRUN_TIME, RunStats

#: Seconds between two ticks (and the first bucket width).
TICK = 1.0

#: Most points a timeline holds (one hour of 1 s buckets).
MAX_POINTS = 3600

_QUANTILES = (0.50, 0.95, 0.99)
_NAN = float("nan")


def percentiles(counts: dict[int, int]) -> tuple[int, float, float, float]:
    """
    Count, p50, p95 and p99 (seconds) of staged microsecond values.
    """
    total = sum(counts.values())
    if not total:
        return 0, _NAN, _NAN, _NAN
    ranks = [max(1, math.ceil(q * total)) for q in _QUANTILES]
    found: list[float] = []
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        while len(found) < len(ranks) and seen >= ranks[len(found)]:
            found.append(value / 1e6)
        if len(found) == len(ranks):
            break
    return total, found[0], found[1], found[2]


@attrs.frozen
class Tick:
    """
    What one tick saw (for a live status line).

    :ivar elapsed: seconds since the timeline started.
    :ivar transactions_per_second: over the tick.
    :ivar p95: scriptrun_time's 95th percentile over the tick, seconds, or
        None without transactions.
    :ivar transactions: every transaction so far.
    :ivar errors: every error so far.
    :ivar active: cannons firing now.
    """

    elapsed: float
    transactions_per_second: float
    p95: float | None
    transactions: int
    errors: int
    active: int


class _TimerColumns:
    __slots__ = ("count", "p50", "p95", "p99")

    def __init__(self, points: int) -> None:
        self.count = array("d", [0.0] * points)
        self.p50 = array("d", [_NAN] * points)
        self.p95 = array("d", [_NAN] * points)
        self.p99 = array("d", [_NAN] * points)

    def columns(self) -> tuple[array[float], ...]:
        return (self.count, self.p50, self.p95, self.p99)


class Timeline:
    """
    :param stats: the run's collector; its :meth:`RunStats.track_buckets`
        is called here.
    :param active: how many cannons fire now.
    """

    def __init__(
        self,
        clock: IReactorTime,
        stats: RunStats,
        active: Callable[[], int],
        *,
        tick: float = TICK,
        max_points: int = MAX_POINTS,
    ) -> None:
        self._clock = clock
        self._stats = stats
        self._active = active
        self._tick_seconds = tick
        self._max_points = max(2, max_points)
        stats.track_buckets()
        #: seconds one bucket spans (doubles when the points are merged)
        self.width = tick
        self._began = 0.0
        self._open_since = 0.0
        self._open_ticks = 0
        self._ticks_per_bucket = 1
        self._open_transactions = 0
        self._open_errors = 0
        self._open: dict[str, dict[int, int]] = {}
        self._transactions = 0
        self._errors = 0
        self.end = array("d")
        self.duration = array("d")
        self.transactions = array("d")
        self.errors = array("d")
        self.active = array("d")
        self.timers: dict[str, _TimerColumns] = {}
        self._listeners: list[Callable[[Tick], None]] = []
        self._loop = LoopingCall(self.tick)
        self._loop.clock = clock

    def on_tick(self, listener: Callable[[Tick], None]) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._began = self._open_since = self._clock.seconds()
        self._loop.start(self._tick_seconds, now=False)

    def stop(self) -> None:
        """
        The run ended: stop ticking, and close the open bucket with what it
        has.
        """
        if self._loop.running:
            self._loop.stop()
        self._take()
        if self._clock.seconds() > self._open_since or self._open_transactions:
            self._close_bucket()

    def tick(self) -> None:
        tps, p95 = self._take()
        now = self._clock.seconds()
        self._open_ticks += 1
        if self._open_ticks >= self._ticks_per_bucket:
            self._close_bucket()
        tick = Tick(
            elapsed=now - self._began,
            transactions_per_second=tps,
            p95=p95,
            transactions=self._transactions,
            errors=self._errors,
            active=self._active(),
        )
        for listener in self._listeners:
            listener(tick)

    def _take(self) -> tuple[float, float | None]:
        transactions, errors, timers = self._stats.take_bucket()
        self._transactions += transactions
        self._errors += errors
        self._open_transactions += transactions
        self._open_errors += errors
        for name, counts in timers.items():
            if not counts:
                continue
            kept = self._open.get(name)
            if kept is None:
                self._open[name] = counts
            else:
                for value, count in counts.items():
                    kept[value] = kept.get(value, 0) + count
        run_times = timers.get(SCRIPTRUN_TIME)
        p95 = percentiles(run_times)[2] if run_times else None
        return transactions / self._tick_seconds, p95

    def _close_bucket(self) -> None:
        now = self._clock.seconds()
        points = len(self.end)
        self.end.append(now - self._began)
        self.duration.append(now - self._open_since)
        self.transactions.append(self._open_transactions)
        self.errors.append(self._open_errors)
        self.active.append(self._active())
        for name in self._open:
            if name not in self.timers:
                self.timers[name] = _TimerColumns(points)
        for name, columns in self.timers.items():
            values = percentiles(self._open.get(name, {}))
            for column, value in zip(columns.columns(), values):
                column.append(value)
        self._open = {}
        self._open_transactions = self._open_errors = 0
        self._open_ticks = 0
        self._open_since = now
        if len(self.end) >= self._max_points:
            self._merge_pairs()

    def _merge_pairs(self) -> None:
        """
        Halve the points: each pair becomes one (see the module's doc).
        """
        n = len(self.end) // 2 * 2

        def pairs(column: array[float], merge: Callable[[float, float], float]) -> array[float]:
            merged = array("d", (merge(column[i], column[i + 1]) for i in range(0, n, 2)))
            merged.extend(column[n:])
            return merged

        def total(a: float, b: float) -> float:
            return a + b

        def later(a: float, b: float) -> float:
            return b

        def larger(a: float, b: float) -> float:
            return b if math.isnan(a) else a if math.isnan(b) else max(a, b)

        for columns in self.timers.values():
            count = columns.count
            p50 = array("d")
            for i in range(0, n, 2):
                a, b = count[i], count[i + 1]
                if not a or not b:
                    p50.append(columns.p50[i] if a else columns.p50[i + 1])
                else:
                    p50.append((columns.p50[i] * a + columns.p50[i + 1] * b) / (a + b))
            p50.extend(columns.p50[n:])
            columns.p50 = p50
            columns.p95 = pairs(columns.p95, larger)
            columns.p99 = pairs(columns.p99, larger)
            columns.count = pairs(count, total)
        self.end = pairs(self.end, later)
        self.duration = pairs(self.duration, total)
        self.transactions = pairs(self.transactions, total)
        self.errors = pairs(self.errors, total)
        self.active = pairs(self.active, later)
        self.width *= 2
        self._ticks_per_bucket *= 2

    # Reading

    def __len__(self) -> int:
        return len(self.end)

    def nbytes(self) -> int:
        """
        Bytes held by the columns.
        """
        columns = [self.end, self.duration, self.transactions, self.errors, self.active]
        for timer in self.timers.values():
            columns += timer.columns()
        return sum(column.itemsize * len(column) for column in columns)

    def to_dict(self) -> dict[str, Any]:
        """
        The points as JSON-ready lists (NaN as None): ``end`` (seconds since
        the start), ``transactions_per_second``, ``errors_per_second``,
        ``active``, and ``timers``: name -> ``p50``, ``p95``, ``p99`` in
        seconds.
        """

        def per_second(column: array[float]) -> list[float]:
            return [
                value / duration if duration > 0 else 0.0
                for value, duration in zip(column, self.duration)
            ]

        def clean(column: array[float]) -> list[float | None]:
            return [None if math.isnan(value) else value for value in column]

        return {
            "end": list(self.end),
            "transactions_per_second": per_second(self.transactions),
            "errors_per_second": per_second(self.errors),
            "active": list(self.active),
            "timers": {
                name: {"p50": clean(c.p50), "p95": clean(c.p95), "p99": clean(c.p99)}
                for name, c in self.timers.items()
            },
        }
