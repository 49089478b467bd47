"""
A run over time: transactions, errors, active cannons and timer
percentiles, and in the open model the planned, started and dropped starts
and the start lag, one point per bucket of time, in bounded memory.

Every :data:`TICK` seconds the timeline takes what
:class:`~octtwisted._stats.summary.RunStats` recorded since the last tick
(counts, and each timer's values as staged microseconds -> count, so no
value is recorded twice), and in the open model what
:class:`~octtwisted._stats.starts.StartStats` counted (its
:meth:`~octtwisted._stats.starts.StartStats.take_bucket`: the starts, and
each start's lag, staged the same way). Ticks add up into the open bucket
until it spans the current bucket width; then its percentiles are
computed, exactly (to the staging's 0.1 %), and it becomes a point. A
start lag's max per point is the largest staged value (within 0.1 % below
the true one).

Per-request statistics (:mod:`octtwisted._stats.requests`): each point
also keeps the p95 of each request name's times in the bucket (NaN when
it had none; merged points keep the larger), and :meth:`Timeline.to_dict`
shows those of the busiest names over the run.

Memory: a point is a float per column in :mod:`array` columns (5, + 4 per
timer, + 1 per request name, + 6 in the open model). When the timeline holds :data:`MAX_POINTS`
points, the points are merged two by two and the bucket width doubles, so
a run of any length holds at most :data:`MAX_POINTS` points. A merged
point adds its counts; its p50 is the two p50s' mean weighted by their
counts (for the start lag: by the starts), its p95 and p99 the larger of
the two (an upper bound), its max the larger of the two. Points made after
the width doubled are exact again.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Callable

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from octtwisted._stats.points import (
    StartColumns,
    TimerColumns,
    add_counts,
    later,
    merged_pairs,
    percentiles,
    summed,
)
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import SCRIPTRUN_TIME, RunStats

#: Seconds between two ticks (and the first bucket width).
TICK = 1.0

#: Most points a timeline holds (one hour of 1 s buckets).
MAX_POINTS = 3600

#: Request names :meth:`Timeline.to_dict` shows (the busiest over the run).
BUSIEST_REQUESTS = 5

_NAN = float("nan")


def _larger(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


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
    :ivar dropped_starts: the open model's starts dropped so far (no
        cannon was free), or None in the closed model.
    """

    elapsed: float
    transactions_per_second: float
    p95: float | None
    transactions: int
    errors: int
    active: int
    dropped_starts: int | None = None


class Timeline:
    """
    :param stats: the run's collector; its :meth:`RunStats.track_buckets`
        is called here.
    :param active: the most cannons that fired at once since its last
        call (a run's ``active_peak``: in the open model, the most
        transactions in flight); each point keeps it, so a point shows
        its bucket's peak, not the count at its end.
    :param starts: the open model's start figures (None in the closed
        model); its :meth:`StartStats.track_buckets` is called here.
    """

    def __init__(
        self,
        clock: IReactorTime,
        stats: RunStats,
        active: Callable[[], int],
        *,
        tick: float = TICK,
        max_points: int = MAX_POINTS,
        starts: StartStats | None = None,
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
        self.timers: dict[str, TimerColumns] = {}
        #: request name -> its p95 (seconds) per point
        self.request_p95: dict[str, array[float]] = {}
        self._open_requests: dict[str, dict[int, int]] = {}
        #: the open model's starts (None in the closed model)
        self.starts = None if starts is None else StartColumns(starts)
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
        starts = self.starts
        if (self._clock.seconds() > self._open_since or self._open_transactions
                or (starts is not None and starts.pending)):
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
            dropped_starts=None if self.starts is None else self.starts.source.dropped,
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
                add_counts(kept, counts)
        for name, (_, counts) in self._stats.requests.take_bucket().items():
            kept = self._open_requests.get(name)
            if kept is None:
                self._open_requests[name] = counts
            else:
                add_counts(kept, counts)
        if self.starts is not None:
            self.starts.take()
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
                self.timers[name] = TimerColumns(points)
        for name, columns in self.timers.items():
            values = percentiles(self._open.get(name, {}))
            for column, value in zip(columns.columns(), values):
                column.append(value)
        requests = self.request_p95
        for name in self._open_requests:
            if name not in requests:
                requests[name] = array("d", [_NAN] * points)
        for name, column in requests.items():
            counts = self._open_requests.get(name)
            column.append(percentiles(counts)[2] if counts else _NAN)
        self._open_requests = {}
        if self.starts is not None:
            self.starts.close()
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
        for columns in self.timers.values():
            columns.merge_pairs(n)
        if self.starts is not None:
            self.starts.merge_pairs(n)
        for name, column in self.request_p95.items():
            self.request_p95[name] = merged_pairs(column, _larger, n)
        self.end = merged_pairs(self.end, later, n)
        self.duration = merged_pairs(self.duration, summed, n)
        self.transactions = merged_pairs(self.transactions, summed, n)
        self.errors = merged_pairs(self.errors, summed, n)
        self.active = merged_pairs(self.active, max, n)  # the peaks: the larger
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
        columns += list(self.request_p95.values())
        if self.starts is not None:
            columns += self.starts.columns()
        return sum(column.itemsize * len(column) for column in columns)

    def to_dict(self) -> dict[str, Any]:
        """
        The points as JSON-ready lists (NaN as None): ``end`` (seconds since
        the start), ``duration`` (seconds each point spans),
        ``transactions_per_second``, ``errors_per_second``, ``active``, and
        ``timers``: name -> ``p50``, ``p95``, ``p99`` in seconds. In the open
        model, ``starts``: the counts of ``planned``, ``started`` and
        ``dropped`` starts in each point, and ``lag``: ``p50``, ``p99``,
        ``max`` in seconds. ``requests``: for the
        :data:`BUSIEST_REQUESTS` request names with the most requests over
        the run, name -> ``p95`` in seconds (None where the point had no
        request of that name).
        """

        def per_second(column: array[float]) -> list[float]:
            return [
                value / duration if duration > 0 else 0.0
                for value, duration in zip(column, self.duration)
            ]

        def clean(column: array[float]) -> list[float | None]:
            return [None if math.isnan(value) else value for value in column]

        data: dict[str, Any] = {
            "end": list(self.end),
            "duration": list(self.duration),
            "transactions_per_second": per_second(self.transactions),
            "errors_per_second": per_second(self.errors),
            "active": list(self.active),
            "timers": {
                name: {"p50": clean(c.p50), "p95": clean(c.p95), "p99": clean(c.p99)}
                for name, c in self.timers.items()
            },
        }
        table = self._stats.requests.names
        busiest = sorted(
            self.request_p95, key=lambda name: (-table[name].requests if name in table else 0, name)
        )[:BUSIEST_REQUESTS]
        data["requests"] = {name: {"p95": clean(self.request_p95[name])} for name in busiest}
        starts = self.starts
        if starts is not None:
            data["starts"] = {
                "planned": [int(v) for v in starts.planned],
                "started": [int(v) for v in starts.started],
                "dropped": [int(v) for v in starts.dropped],
                "lag": {"p50": clean(starts.lag_p50), "p99": clean(starts.lag_p99),
                        "max": clean(starts.lag_max)},
            }
        return data
