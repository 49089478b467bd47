"""
One timer's values: an HDR histogram, staged (see :class:`Timer`), and
its figures (:class:`TimerStats`). :mod:`octtwisted._stats.summary` tells
the units and accuracy.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import attrs
from hdrh.histogram import HdrHistogram

#: Smallest trackable value, in microseconds. Anything smaller is recorded
#: as this by :meth:`Timer.record` (custom timers' negative and NaN values
#: never reach it: see :mod:`octtwisted._stats.faults`).
LOWEST_US = 1

#: Largest trackable value, in microseconds (one hour). Anything larger is
#: recorded as this (and counted, for a custom timer).
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


def staged_value(us: int) -> int:
    """
    What :meth:`Timer.record` stages ``us`` (whole microseconds, within
    the histograms' range) as: rounded down to :data:`STAGING_BITS`
    significant bits. This is also the lowest value of the histogram's
    bucket that holds ``us``: the histograms keep the same 11 bits.
    """
    shift = us.bit_length() - STAGING_BITS
    return (us >> shift) << shift if shift > 0 else us


class Span(NamedTuple):
    """
    The exact figures of some values (whole microseconds): their sum,
    smallest and largest. :data:`NO_VALUES` is the span of none.
    """

    total_us: int
    min_us: int
    max_us: int

    def join(self, other: Span) -> Span:
        """The span of the values of both."""
        return Span(
            self.total_us + other.total_us,
            min(self.min_us, other.min_us),
            max(self.max_us, other.max_us),
        )


#: The span of no values: joined with another span, it gives that span.
NO_VALUES = Span(0, HIGHEST_US, LOWEST_US)


def add_counts(into: dict[int, int], counts: Mapping[int, int]) -> None:
    """
    Add ``counts`` (value -> count) into ``into``.
    """
    if into:
        for value, count in counts.items():
            into[value] = into.get(value, 0) + count
    else:
        into.update(counts)


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

    Parts (see :mod:`octtwisted._stats.parts`): from the first
    :meth:`take_part_values` on, :meth:`settle` also counts the staged
    values into ``part``, and each call cuts the exact sum, min and max:
    ``total_us``, ``min_us`` and ``max_us`` (what :meth:`record` updates)
    cover the values recorded since the last cut, ``earlier`` the values
    held from before it, and ``gone`` those recorded since the last cut
    that :meth:`merge_into` moved away. Recording does no more work.
    """

    __slots__ = (
        "histogram",
        "staged",
        "bucket",
        "part",
        "total_us",
        "min_us",
        "max_us",
        "earlier",
        "gone",
    )

    def __init__(self, *, buckets: bool = False) -> None:
        self.histogram = _new_histogram()
        self.staged: dict[int, int] = {}
        #: with ``buckets``: the staged counts settled since the last
        #: :meth:`take_bucket` (a timeline's bucket), else None
        self.bucket: dict[int, int] | None = {} if buckets else None
        #: once parts are taken: the staged counts settled since the last
        #: :meth:`take_part_values`, else None
        self.part: dict[int, int] | None = None
        self.total_us = 0
        self.min_us = HIGHEST_US
        self.max_us = LOWEST_US
        self.earlier = NO_VALUES
        self.gone = NO_VALUES

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
        Move the staged counts into the histogram (and into the bucket and
        the part, when kept).
        """
        staged = self.staged
        if staged:
            record = self.histogram.record_value
            for value, count in staged.items():
                record(value, count)
            if self.bucket is not None:
                add_counts(self.bucket, staged)
            if self.part is not None:
                add_counts(self.part, staged)
            staged.clear()

    def held(self) -> Span:
        """
        The exact sum, min and max of the values the timer holds.
        """
        recent = Span(self.total_us, self.min_us, self.max_us)
        earlier = self.earlier
        return recent if earlier is NO_VALUES else earlier.join(recent)

    def contents(self) -> dict[int, int]:
        """
        Every value the timer holds, staged or settled, as staged
        microseconds -> count (a histogram bucket's lowest value is the
        staged value of all it holds, see :func:`staged_value`). Reads the
        histogram between the min and max held: for a first part, not for
        each.
        """
        counts = dict(self.staged)
        histogram = self.histogram
        if histogram.get_total_count():
            _, low, high = self.held()
            first = histogram.get_counts_array_index(low)
            last = histogram.get_counts_array_index(high)
            value_at = histogram.get_value_from_index
            for offset, count in enumerate(histogram.counts[first : last + 1]):
                if count:
                    value = value_at(first + offset)
                    counts[value] = counts.get(value, 0) + count
        return counts

    def take_part_values(
        self, merged_into: Timer | None = None
    ) -> tuple[dict[int, int], Span] | None:
        """
        The values recorded (or added) since the last call, as staged
        microseconds -> count and their exact span, or None if none.

        The first call gives every value recorded so far: those the timer
        holds, and those it moved by :meth:`merge_into` into
        ``merged_into`` (the one timer it merges into, which records
        nothing itself). From then on, :meth:`settle` keeps a part.
        Nothing is taken from the histogram, bucket or figures.
        """
        recent = Span(self.total_us, self.min_us, self.max_us)
        part = self.part
        if part is None:
            counts = self.contents()
            if merged_into is not None:
                add_counts(counts, merged_into.contents())
                recent = recent.join(merged_into.held())
            self.settle()
        else:
            self.settle()
            counts = part
            recent = self.gone.join(recent)
        self.part = {}
        self.gone = NO_VALUES
        self.earlier = self.held()
        self.total_us, self.min_us, self.max_us = NO_VALUES
        return (counts, recent) if counts else None

    def add_values(self, counts: Mapping[int, int], span: Span) -> None:
        """
        Take in values recorded elsewhere (staged microseconds -> count,
        with their exact span) as if recorded here now.
        """
        add_counts(self.staged, counts)
        self.total_us += span.total_us
        self.min_us = min(self.min_us, span.min_us)
        self.max_us = max(self.max_us, span.max_us)

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
        ``other`` takes no parts: what it receives is not in them.
        """
        self.settle()
        if not self.histogram.get_total_count():
            return
        other.settle()
        other.histogram.add(self.histogram)
        other.add_values({}, self.held())
        self.histogram.reset()
        if self.part is not None:
            self.gone = self.gone.join(Span(self.total_us, self.min_us, self.max_us))
        self.earlier = NO_VALUES
        self.total_us, self.min_us, self.max_us = NO_VALUES

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
        _, low, high = self.held()
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
        held = self.held()
        if stat == "min":
            return held.min_us / _US_PER_SECOND
        if stat == "max":
            return held.max_us / _US_PER_SECOND
        if stat == "mean":
            return held.total_us / count / _US_PER_SECOND
        assert percentile is not None, stat
        return self.percentiles(percentile)[percentile]

    def stats(self) -> TimerStats | None:
        count = self.count
        if not count:
            return None
        p = self.percentiles(*_PERCENTILES)
        held = self.held()
        return TimerStats(
            count=count,
            min=held.min_us / _US_PER_SECOND,
            mean=held.total_us / count / _US_PER_SECOND,
            p50=p[50.0],
            p90=p[90.0],
            p95=p[95.0],
            p99=p[99.0],
            max=held.max_us / _US_PER_SECOND,
        )
