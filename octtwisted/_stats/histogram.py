"""
One timer's values: an HDR histogram, staged (see :class:`Timer`), and
its figures (:class:`TimerStats`). :mod:`octtwisted._stats.summary` tells
the units and accuracy.
"""

from __future__ import annotations

from typing import Any

import attrs
from hdrh.histogram import HdrHistogram

#: Smallest trackable value, in microseconds. Anything smaller is recorded
#: as this.
LOWEST_US = 1

#: Largest trackable value, in microseconds (one hour). Anything larger is
#: recorded as this.
HIGHEST_US = 3_600 * 1_000_000

#: Significant decimal digits kept by the histograms: 3 digits means a value
#: is known within 1/1024 (about 0.1%).
SIGNIFICANT_FIGURES = 3

_PERCENTILES = (50.0, 90.0, 95.0, 99.0)
_US_PER_SECOND = 1_000_000.0


def _new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def _to_microseconds(seconds: float) -> int:
    """
    Seconds as whole microseconds, clamped into the histograms' range.

    ``not us >= LOWEST_US`` (rather than ``us < LOWEST_US``) also catches NaN.
    """
    us = seconds * _US_PER_SECOND
    if not us >= LOWEST_US:
        return LOWEST_US
    if us >= HIGHEST_US:
        return HIGHEST_US
    return int(us + 0.5)


@attrs.frozen
class TimerStats:
    """
    The distribution of one timer, in seconds.

    :ivar count: how many values were recorded.
    :ivar min: the smallest value.
    :ivar mean: the mean value.
    :ivar p50: the median (50th percentile).
    :ivar p90: the 90th percentile.
    :ivar p95: the 95th percentile.
    :ivar p99: the 99th percentile.
    :ivar max: the largest value.
    """

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        """
        The figures as a JSON-ready dict, seconds as floats.
        """
        return {
            "count": self.count,
            "min": self.min,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
        }


#: Binary significant digits kept when staging a value (see Timer): 11
#: bits, so a staged value is within 1/1024 (about 0.1%) below the real one.
STAGING_BITS = 11


class Timer:
    """
    One timer's histogram, plus the exact sum, min and max of what it holds.

    Recording is the hot path (once per transaction), and the histogram's
    own ``record_value`` is pure Python and costs several function calls.
    So values are first staged: rounded down to :data:`STAGING_BITS`
    significant bits and counted in a small dict (at most a few thousand
    keys, one per log-linear bucket). The staged counts go into the
    histogram, a few hundred ``record_value`` calls at a time, whenever the
    histogram is read or merged. The combined value error stays under 0.2%.
    """

    __slots__ = ("histogram", "staged", "bucket", "total_us", "min_us", "max_us")

    def __init__(self, *, buckets: bool = False) -> None:
        self.histogram = _new_histogram()
        self.staged: dict[int, int] = {}
        #: with ``buckets``: the staged counts settled since the last
        #: :meth:`take_bucket` (a timeline's bucket), else None
        self.bucket: dict[int, int] | None = {} if buckets else None
        self.total_us = 0
        self.min_us = HIGHEST_US
        self.max_us = LOWEST_US

    def record(self, seconds: float) -> None:
        us = _to_microseconds(seconds)
        shift = us.bit_length() - STAGING_BITS
        key = (us >> shift) << shift if shift > 0 else us
        staged = self.staged
        staged[key] = staged.get(key, 0) + 1
        self.total_us += us
        if us < self.min_us:
            self.min_us = us
        if us > self.max_us:
            self.max_us = us

    def settle(self) -> None:
        """
        Move the staged counts into the histogram.
        """
        staged = self.staged
        if staged:
            record = self.histogram.record_value
            for value, count in staged.items():
                record(value, count)
            bucket = self.bucket
            if bucket is not None:
                if bucket:
                    for value, count in staged.items():
                        bucket[value] = bucket.get(value, 0) + count
                else:
                    bucket.update(staged)
            staged.clear()

    def take_bucket(self) -> dict[int, int]:
        """
        The values (staged microseconds -> count) recorded since the last
        call; empty unless made with ``buckets``.
        """
        self.settle()
        bucket = self.bucket
        if bucket is None:
            return {}
        self.bucket = {}
        return bucket

    def merge_into(self, other: "Timer") -> None:
        """
        Add everything this timer holds to ``other``, then empty this one.
        """
        self.settle()
        if not self.histogram.get_total_count():
            return
        other.settle()
        other.histogram.add(self.histogram)
        other.total_us += self.total_us
        other.min_us = min(other.min_us, self.min_us)
        other.max_us = max(other.max_us, self.max_us)
        self.histogram.reset()
        self.total_us = 0
        self.min_us = HIGHEST_US
        self.max_us = LOWEST_US

    @property
    def count(self) -> int:
        self.settle()
        return int(self.histogram.get_total_count())

    def percentiles(self, *percentiles: float) -> dict[float, float]:
        """
        The given percentiles, in seconds, clamped into ``[min, max]``.

        The histogram answers with the top of the bucket holding the value;
        the true percentile can be no more than the true max.
        """
        self.settle()
        found = self.histogram.get_percentile_to_value_dict(list(percentiles))
        low, high = self.min_us, self.max_us
        return {
            p: min(max(found[p], low), high) / _US_PER_SECOND for p in percentiles
        }

    def value(self, stat: str, percentile: float | None) -> float | None:
        """
        One statistic: ``count``, ``min``, ``max``, ``mean`` (seconds), or
        ``p`` with ``percentile``; None when nothing was recorded.
        """
        count = self.count
        if not count:
            return None
        if stat == "count":
            return float(count)
        if stat == "min":
            return self.min_us / _US_PER_SECOND
        if stat == "max":
            return self.max_us / _US_PER_SECOND
        if stat == "mean":
            return self.total_us / count / _US_PER_SECOND
        assert percentile is not None, stat
        return self.percentiles(percentile)[percentile]

    def stats(self) -> TimerStats | None:
        count = self.count
        if not count:
            return None
        p = self.percentiles(*_PERCENTILES)
        return TimerStats(
            count=count,
            min=self.min_us / _US_PER_SECOND,
            mean=self.total_us / count / _US_PER_SECOND,
            p50=p[50.0],
            p90=p[90.0],
            p95=p[95.0],
            p99=p[99.0],
            max=self.max_us / _US_PER_SECOND,
        )
