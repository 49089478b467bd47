"""
Start figures of the open workload model: planned starts, those that
started, those dropped because no cannon was idle, and the start lag
(actual start minus planned start) in an HDR histogram.

Conservation: every planned start is either started or dropped, exactly.
"""

from __future__ import annotations

from typing import Any

import attrs

from octtwisted._stats.histogram import Timer, TimerStats
from octtwisted._stats.parts import StartsPart, TimerPart


@attrs.frozen
class StartFigures:
    """
    :ivar planned: starts the schedule planned so far.
    :ivar started: of those, started by a cannon.
    :ivar dropped: of those, dropped: no cannon was idle at the planned time.
    :ivar lag: actual start minus planned start, seconds (None before any).
    """

    planned: int
    started: int
    dropped: int
    lag: TimerStats | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "started": self.started,
            "dropped": self.dropped,
            "start_lag": None if self.lag is None else self.lag.to_dict(),
        }


class StartStats:
    """
    Counts the planned, started and dropped starts and records each lag;
    :meth:`take_interval` gives the figures since its last call (progress
    lines), :meth:`take_bucket` the counts and lags since its own last call
    (a timeline's bucket), :meth:`figures` those of the whole run,
    :meth:`take_part` those since its own last call for another process
    (which adds them with :meth:`add_part`). The
    schedule calls :meth:`plan`, :meth:`start` and :meth:`drop`, and these
    are the only figures of the starts: the summary, the progress lines and
    the timeline all read them here.
    """

    def __init__(self) -> None:
        self.planned = 0
        self.started = 0
        self.dropped = 0
        self._lag = Timer()
        self._interval_lag = Timer()
        self._taken = (0, 0, 0)
        self._bucket_taken = (0, 0, 0)
        self._part_taken = (0, 0, 0)

    def plan(self) -> None:
        self.planned += 1

    def start(self, lag: float) -> None:
        self.started += 1
        self._interval_lag.record(max(lag, 0.0))

    def drop(self, count: int = 1) -> None:
        self.dropped += count

    def lag_timers(self) -> tuple[Timer, ...]:
        """
        The timers that hold the start lags so far (the interval's and the
        run's), for a reader that takes nothing from the figures.
        """
        return (self._interval_lag, self._lag)

    def take_interval(self) -> StartFigures:
        planned, started, dropped = self._taken
        lag = self._interval_lag.stats()
        self._interval_lag.merge_into(self._lag)
        self._taken = (self.planned, self.started, self.dropped)
        return StartFigures(
            self.planned - planned, self.started - started, self.dropped - dropped, lag
        )

    def track_buckets(self) -> None:
        """
        From now on, keep the lags for :meth:`take_bucket`. Call it before
        the first start.
        """
        self._interval_lag.bucket = {}

    def take_bucket(self) -> tuple[int, int, int, dict[int, int]]:
        """
        What happened since the last call (or since the start): planned,
        started and dropped starts, and the lags recorded as staged
        microseconds -> count (see :class:`Timer`; empty without
        :meth:`track_buckets`). Progress lines and summaries read the same
        counts and histograms without taking anything from it.
        """
        lags = self._interval_lag.take_bucket()
        planned, started, dropped = self._bucket_taken
        self._bucket_taken = (self.planned, self.started, self.dropped)
        return self.planned - planned, self.started - started, self.dropped - dropped, lags

    def lag_value(self, stat: str, percentile: float | None) -> float | None:
        """
        A statistic of the start lag over the run so far (see
        :meth:`Timer.value`), None before any start.
        """
        self._interval_lag.merge_into(self._lag)
        return self._lag.value(stat, percentile)

    def figures(self) -> StartFigures:
        self._interval_lag.merge_into(self._lag)
        return StartFigures(self.planned, self.started, self.dropped, self._lag.stats())

    def take_part(self) -> StartsPart | None:
        """
        What happened since the last call (or since the start), for
        another process's :meth:`add_part`; None if nothing did. Takes
        nothing from the other figures.
        """
        taken = self._part_taken
        now = self._part_taken = (self.planned, self.started, self.dropped)
        lag = TimerPart.take(self._interval_lag, self._lag)
        if lag is None and now == taken:
            return None
        return StartsPart(now[0] - taken[0], now[1] - taken[1], now[2] - taken[2], lag)

    def add_part(self, part: StartsPart) -> None:
        """
        Count another process's starts (see :meth:`take_part`) as if they
        happened here now.
        """
        self.planned += part.planned
        self.started += part.started
        self.dropped += part.dropped
        if part.lag is not None:
            part.lag.add_to(self._interval_lag)
