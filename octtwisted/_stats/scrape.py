"""
The turret's figures as a scraper reads them (``--metrics``, see
``docs/metrics.rst``): counts since the process started, and each timer
as cumulative counts at fixed bucket bounds (:data:`BUCKETS`).

Nothing here runs on the hot path: a scrape reads the counts and HDR
histograms that :class:`~octtwisted._stats.summary.RunStats` and
:class:`~octtwisted._stats.starts.StartStats` keep anyway, and takes
nothing from them (no interval, bucket or part is taken: the progress
lines, timeline and worker parts see the same figures as without it).

Precision
=========

The bucket bounds grow by ``10 ** (1 / 25)`` (about 9.65%; at most 9.7% once rounded to the microsecond) from 1 ms to
60 s. Prometheus's ``histogram_quantile`` interpolates inside the bucket
that holds the quantile, so its answer is within one bucket's width of
the true value: within 9.7%, plus the HDR histograms' 0.1%, so within
10% of the summary's percentile, for values between 1 ms and 60 s. Below
1 ms the first bucket (0 to 1 ms) is all it can say; above 60 s, only
that the value is above. Fewer buckets would break the promise: the
worst case (every value of the bucket at its lower bound, the answer at
its upper) is off by the ratio minus 1, so the ratio must stay under
1.0985 (``docs/metrics.rst`` works it out): 119 bounds at least, 121 here.

Across runs
===========

A run's :class:`RunStats` is new for each run; Prometheus wants counters
that only grow while the process lives. :class:`TurretTally` keeps the
figures of the runs that ended and adds those of the run under way (or
of the last one, until the next starts).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import accumulate
from typing import Any, Sequence

import attrs

from octtwisted._stats.faults import invalid_only
from octtwisted._stats.histogram import Timer
from octtwisted._stats.requests import NameStats
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import RunStats

#: Buckets per tenfold: ``10 ** (1 / 25)`` is a bucket's growth.
BUCKETS_PER_DECADE = 25


def _bounds() -> tuple[float, ...]:
    bounds = []
    step = 0
    while True:
        bound = round(0.001 * 10 ** (step / BUCKETS_PER_DECADE), 6)
        if bound >= 60.0:
            break
        bounds.append(bound)
        step += 1
    bounds.append(60.0)
    return tuple(bounds)


#: The histograms' bucket bounds (``le``), seconds: 1 ms to 60 s (then
#: ``+Inf``).
BUCKETS: tuple[float, ...] = _bounds()

_BOUNDS_US = tuple(int(bound * 1_000_000) for bound in BUCKETS)

#: The unsigned :mod:`array` type code for each size of count, bytes.
_TYPECODES = {array(code).itemsize: code for code in ("Q", "L", "I", "H", "B")}


@attrs.frozen
class HistogramFigures:
    """
    One timer's values, as a Prometheus histogram.

    :ivar buckets: cumulative counts, one per bound of :data:`BUCKETS`.
    :ivar count: every value (the ``+Inf`` bucket).
    :ivar total: the sum of the values, seconds.
    """

    buckets: tuple[int, ...]
    count: int
    total: float

    def plus(self, other: HistogramFigures) -> HistogramFigures:
        return HistogramFigures(
            tuple(a + b for a, b in zip(self.buckets, other.buckets)),
            self.count + other.count,
            self.total + other.total,
        )


NO_VALUES = HistogramFigures((0,) * len(BUCKETS), 0, 0.0)


_INDICES: dict[tuple[int, int, int], tuple[int, ...]] = {}


def _bound_indices(histogram: Any) -> tuple[int, ...]:
    """
    The index, in an HDR histogram's counts array, of the bucket that
    holds each bound of :data:`BUCKETS`: the same for every histogram of
    the same range and precision, so worked out once for them.
    """
    shape = (
        histogram.lowest_trackable_value,
        histogram.highest_trackable_value,
        histogram.significant_figures,
    )
    indices = _INDICES.get(shape)
    if indices is None:
        index = histogram.get_counts_array_index
        indices = _INDICES[shape] = tuple(index(bound) for bound in _BOUNDS_US)
    return indices


def _counts(counts: Any, start: int, end: int) -> array[int]:
    """
    ``counts[start:end]`` of an HDR histogram's counts (a ctypes array) as
    an :class:`array.array`: copied as bytes, 30 times faster than
    slicing the ctypes array.
    """
    view = memoryview(counts)
    size = view.itemsize
    raw = view.cast("B")
    found = array(_TYPECODES[size])
    found.frombytes(raw[start * size : end * size])
    return found


def _cumulative(timer: Timer) -> HistogramFigures | None:
    """One timer's values as cumulative counts at the bounds (None: no values)."""
    timer.settle()
    histogram = timer.histogram
    if not histogram.get_total_count():
        return None
    span = timer.held()
    indices = _bound_indices(histogram)
    index = histogram.get_counts_array_index
    first, last = index(span.min_us), index(span.max_us)
    counts = _counts(histogram.counts, first, last + 1)
    # Sums of the counts between the bounds (in C), once each, from the
    # smallest value to the largest: below it every bound holds 0, above
    # it every value.
    below = bisect_left(indices, first)
    above = bisect_left(indices, last, below)
    cumulative = [0] * below
    running = position = 0
    for at in indices[below:above]:
        running += sum(counts[position : at - first + 1])
        position = at - first + 1
        cumulative.append(running)
    count = running + sum(counts[position:])
    cumulative += [count] * (len(indices) - above)
    return HistogramFigures(tuple(cumulative), count, span.total_us / 1e6)


def read_timers(timers: Sequence[Timer]) -> HistogramFigures:
    """
    The values the timers hold together. Settles their staged values
    (which every reader does); reads a timer's HDR counts between its
    smallest and largest value in one pass, once, at precomputed indices.
    """
    totals: HistogramFigures | None = None
    for timer in timers:
        figures = _cumulative(timer)
        if figures is not None:
            totals = figures if totals is None else totals.plus(figures)
    return NO_VALUES if totals is None else totals


class _Slots(dict):  # type: ignore[type-arg]
    """Staged value (microseconds) -> the index of the first bound at or above it."""

    def __missing__(self, value: int) -> int:
        slot = self[value] = bisect_left(_BOUNDS_US, value)
        return slot


#: Shared by every request name: at most a few thousand staged values.
_SLOT_OF = _Slots()


def request_histogram(entry: NameStats) -> HistogramFigures:
    """
    One request name's times as cumulative counts at the bounds, from its
    staged values (each counted at the first bound at or above it: a
    staged value is at most 0.4% below the real one). The first read
    counts every value into slots that the name's ``settle`` keeps up to
    date from then on, so a scrape costs what was recorded since the last.
    """
    entry.settle()
    if entry.scraped is None:
        slots = [0] * (len(_BOUNDS_US) + 1)
        for value, count in entry.values.items():
            slots[_SLOT_OF[value]] += count
        entry.scraped = (slots, _SLOT_OF)
    else:
        slots = entry.scraped[0]
    cumulative = tuple(accumulate(slots))
    return HistogramFigures(cumulative[:-1], cumulative[-1], entry.total_us / 1e6)


def status_classes(entry: NameStats) -> dict[str, int]:
    """
    A request name's requests by status class (``2xx``, ``5xx``...), and
    ``error`` for those that got no response.
    """
    classes: dict[str, int] = {}
    answered = 0
    for status, count in entry.statuses.items():
        label = f"{status // 100}xx"
        classes[label] = classes.get(label, 0) + count
        answered += count
    if entry.requests > answered:
        classes["error"] = entry.requests - answered
    return classes


@attrs.frozen
class RequestFigures:
    """One request name's figures: requests by status class, and times."""

    classes: dict[str, int]
    time: HistogramFigures

    def plus(self, other: RequestFigures) -> RequestFigures:
        classes = dict(self.classes)
        for label, count in other.classes.items():
            classes[label] = classes.get(label, 0) + count
        return RequestFigures(classes, self.time.plus(other.time))


@attrs.frozen
class StartCounts:
    """The open model's starts: planned, started, dropped, and the lags."""

    planned: int
    started: int
    dropped: int
    lag: HistogramFigures

    def plus(self, other: StartCounts) -> StartCounts:
        return StartCounts(
            self.planned + other.planned,
            self.started + other.started,
            self.dropped + other.dropped,
            self.lag.plus(other.lag),
        )


@attrs.frozen
class Figures:
    """
    What a scrape shows of the turret's runs.

    :ivar timers: ``scriptrun_time`` first, then the custom timers.
    :ivar starts: None while no run of the open model has fired.
    :ivar requests: per request name (per-request statistics).
    :ivar invalid: (custom timer name, kind) -> how many of its values were
        invalid (negative, NaN, infinite: see :mod:`octtwisted._stats.faults`),
        not in its histogram.
    """

    transactions: int = 0
    errors: int = 0
    timers: dict[str, HistogramFigures] = attrs.field(factory=dict)
    starts: StartCounts | None = None
    requests: dict[str, RequestFigures] = attrs.field(factory=dict)
    invalid: dict[tuple[str, str], int] = attrs.field(factory=dict)

    def plus(self, other: Figures) -> Figures:
        timers = dict(self.timers)
        for name, figures in other.timers.items():
            timers[name] = timers[name].plus(figures) if name in timers else figures
        starts = self.starts
        if other.starts is not None:
            starts = other.starts if starts is None else starts.plus(other.starts)
        requests = dict(self.requests)
        for name, request in other.requests.items():
            requests[name] = requests[name].plus(request) if name in requests else request
        invalid = dict(self.invalid)
        for key, count in other.invalid.items():
            invalid[key] = invalid.get(key, 0) + count
        return Figures(
            self.transactions + other.transactions, self.errors + other.errors, timers, starts,
            requests, invalid,
        )


def read_run(stats: RunStats, starts: StartStats | None) -> Figures:
    """One run's figures so far, taking nothing from them."""
    timers = {name: read_timers(held) for name, held in stats.timers().items()}
    counts = None
    if starts is not None:
        counts = StartCounts(
            starts.planned, starts.started, starts.dropped, read_timers(starts.lag_timers())
        )
    requests = {
        name: RequestFigures(status_classes(entry), request_histogram(entry))
        for name, entry in stats.requests.names.items()
    }
    invalid = {
        (name, kind): count
        for name, kinds in invalid_only(stats.faults.counts).items()
        for kind, count in kinds.items()
    }
    return Figures(stats.transactions, stats.errors, timers, counts, requests, invalid)


class TurretTally:
    """
    The figures of every run since the process started: those of the runs
    that ended, plus the one under way (or the last one, until another
    starts). :meth:`run_started` is told of each run as it is made (no
    run is missed, however short, whenever the scrapes come); a scrape
    calls :meth:`read`.
    """

    def __init__(self) -> None:
        self._ended = Figures()
        self._stats: RunStats | None = None
        self._starts: StartStats | None = None

    def run_started(self, stats: RunStats, starts: StartStats | None) -> None:
        """A new run, whose figures are ``stats`` and ``starts``: the last one has ended."""
        if self._stats is not None:
            self._ended = self._ended.plus(read_run(self._stats, self._starts))
        self._stats, self._starts = stats, starts

    def read(self) -> Figures:
        """The figures so far."""
        if self._stats is None:
            return self._ended
        return self._ended.plus(read_run(self._stats, self._starts))
