"""
What a timeline's point holds, and how two points merge into one (see
:mod:`octtwisted._stats.timeline`): the percentiles of a bucket's staged
values, a timer's columns, and the open model's start columns.
"""

from __future__ import annotations

import math
from array import array
from typing import Callable

from octtwisted._stats.starts import StartStats

_QUANTILES = (0.50, 0.95, 0.99)
_NAN = float("nan")
_LAG_QUANTILES = (0.50, 0.99)


def _ranked(counts: dict[int, int], quantiles: tuple[float, ...]) -> tuple[int, list[float]]:
    """
    Count and nearest-rank ``quantiles`` (seconds) of staged microsecond
    values; NaN without values.
    """
    total = sum(counts.values())
    if not total:
        return 0, [_NAN] * len(quantiles)
    ranks = [max(1, math.ceil(q * total)) for q in quantiles]
    found: list[float] = []
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        while len(found) < len(ranks) and seen >= ranks[len(found)]:
            found.append(value / 1e6)
        if len(found) == len(ranks):
            break
    return total, found


def percentiles(counts: dict[int, int]) -> tuple[int, float, float, float]:
    """
    Count, p50, p95 and p99 (seconds) of staged microsecond values.
    """
    total, (p50, p95, p99) = _ranked(counts, _QUANTILES)
    return total, p50, p95, p99


def lag_figures(counts: dict[int, int]) -> tuple[float, float, float]:
    """
    p50, p99 and max (seconds) of staged microsecond values (NaN without
    values).
    """
    _, (p50, p99) = _ranked(counts, _LAG_QUANTILES)
    return p50, p99, (max(counts) / 1e6 if counts else _NAN)


def add_counts(kept: dict[int, int], counts: dict[int, int]) -> None:
    """Add staged microseconds -> count ``counts`` into ``kept``."""
    for value, count in counts.items():
        kept[value] = kept.get(value, 0) + count


# Merging two points into one (see the module's doc).


def merged_pairs(column: array[float], merge: Callable[[float, float], float], n: int) -> array[float]:
    """
    ``column`` with its first ``n`` points merged two by two by ``merge``
    (the rest kept as they are).
    """
    merged = array("d", (merge(column[i], column[i + 1]) for i in range(0, n, 2)))
    merged.extend(column[n:])
    return merged


def summed(a: float, b: float) -> float:
    """Merges two counts."""
    return a + b


def later(a: float, b: float) -> float:
    """Merges two readings of a level: the later one holds."""
    return b


def _larger(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


def _weighted(values: array[float], weights: array[float], n: int) -> array[float]:
    """
    Pairs of ``values`` merged into their mean weighted by ``weights`` (the
    one with a weight, when only one has).
    """
    merged = array("d")
    for i in range(0, n, 2):
        a, b = weights[i], weights[i + 1]
        if not a or not b:
            merged.append(values[i] if a else values[i + 1])
        else:
            merged.append((values[i] * a + values[i + 1] * b) / (a + b))
    merged.extend(values[n:])
    return merged


class TimerColumns:
    """
    One timer's count, p50, p95 and p99 (seconds) per point.
    """

    __slots__ = ("count", "p50", "p95", "p99")

    def __init__(self, points: int) -> None:
        self.count = array("d", [0.0] * points)
        self.p50 = array("d", [_NAN] * points)
        self.p95 = array("d", [_NAN] * points)
        self.p99 = array("d", [_NAN] * points)

    def columns(self) -> tuple[array[float], ...]:
        return (self.count, self.p50, self.p95, self.p99)

    def merge_pairs(self, n: int) -> None:
        self.p50 = _weighted(self.p50, self.count, n)
        self.p95 = merged_pairs(self.p95, _larger, n)
        self.p99 = merged_pairs(self.p99, _larger, n)
        self.count = merged_pairs(self.count, summed, n)


class StartColumns:
    """
    The open model's starts per point: planned, started and dropped
    starts, and the start lag's p50, p99 and max (seconds); and the open
    bucket's, taken from ``source`` at each tick.
    """

    __slots__ = ("source", "planned", "started", "dropped", "lag_p50", "lag_p99", "lag_max",
                 "_open", "_open_lags")

    def __init__(self, source: StartStats) -> None:
        self.source = source
        source.track_buckets()
        self.planned = array("d")
        self.started = array("d")
        self.dropped = array("d")
        self.lag_p50 = array("d")
        self.lag_p99 = array("d")
        self.lag_max = array("d")
        self._open = [0, 0, 0]
        self._open_lags: dict[int, int] = {}

    def columns(self) -> tuple[array[float], ...]:
        return (self.planned, self.started, self.dropped, self.lag_p50, self.lag_p99, self.lag_max)

    @property
    def pending(self) -> bool:
        """Whether the open bucket counted any start."""
        return any(self._open)

    def take(self) -> None:
        planned, started, dropped, lags = self.source.take_bucket()
        kept = self._open
        kept[0] += planned
        kept[1] += started
        kept[2] += dropped
        if lags:
            if self._open_lags:
                add_counts(self._open_lags, lags)
            else:
                self._open_lags = lags

    def close(self) -> None:
        for column, value in zip(self.columns(), (*self._open, *lag_figures(self._open_lags))):
            column.append(value)
        self._open = [0, 0, 0]
        self._open_lags = {}

    def merge_pairs(self, n: int) -> None:
        self.lag_p50 = _weighted(self.lag_p50, self.started, n)
        self.lag_p99 = merged_pairs(self.lag_p99, _larger, n)
        self.lag_max = merged_pairs(self.lag_max, _larger, n)
        self.planned = merged_pairs(self.planned, summed, n)
        self.started = merged_pairs(self.started, summed, n)
        self.dropped = merged_pairs(self.dropped, summed, n)
