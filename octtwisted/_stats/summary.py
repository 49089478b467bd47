"""
Run statistics for a turret: counts, error tallies and latency percentiles.

Every latency goes into an HDR histogram (the ``hdrhistogram`` package), never
into a list of samples, so a run of a week costs the same memory as a run of a
minute: one histogram per timer, plus a bounded tally of error strings.

Units and accuracy
==================

Timers arrive in seconds (floats). They are recorded as whole microseconds in
histograms that track 1 us .. 1 hour with three significant digits, so any
recorded value, and so any percentile, is within 0.1% of the real one; the
promise made to users is 1%.

* A value below 1 us (including ``0``, negative values from a confused clock,
  and NaN) is recorded as 1 us: the histogram cannot tell 0 from 1 us, and a
  transaction that took no measurable time still counts.
* A value above one hour (including infinity) is recorded as one hour.

Clamped values are counted like any other, at the limit, so counts always add
up.

Min, max and mean are exact (over the microsecond values as recorded); the
percentiles come from the histogram, and are clamped into ``[min, max]`` so
that, for instance, a constant load reports the same figure everywhere.
Values are staged in a small dict before they reach the histogram (see
``_Timer``), which adds at most 0.1% to the value error.

The collector
=============

* :class:`RunStats` sees every result of a run and produces a
  :class:`Summary` at its end; :meth:`RunStats.take_interval` gives the
  figures since the last call, for a live progress line.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any, Mapping, Protocol

import attrs
from hdrh.histogram import HdrHistogram

if TYPE_CHECKING:
    from octtwisted._stats.starts import StartFigures

#: Smallest trackable value, in microseconds. Anything smaller is recorded
#: as this.
LOWEST_US = 1

#: Largest trackable value, in microseconds (one hour). Anything larger is
#: recorded as this.
HIGHEST_US = 3_600 * 1_000_000

#: Significant decimal digits kept by the histograms: 3 digits means a value
#: is known within 1/1024 (about 0.1%).
SIGNIFICANT_FIGURES = 3

#: Most distinct error strings tallied one by one; past this, new error
#: strings are counted together under :data:`OTHER_ERRORS`.
MAX_DISTINCT_ERRORS = 1000

#: The tally key for errors past :data:`MAX_DISTINCT_ERRORS`.
OTHER_ERRORS = "(other errors)"

#: How many of the most frequent errors a :class:`Summary` names.
TOP_ERRORS = 5

#: Longest error text :meth:`Summary.format_table` shows.
ERROR_DISPLAY_WIDTH = 100

#: Longest timer name :meth:`Summary.format_table` shows.
NAME_DISPLAY_WIDTH = 40

#: The name of the script run timer, in tables.
SCRIPTRUN_TIME = "scriptrun_time"

_PERCENTILES = (50.0, 90.0, 95.0, 99.0)
_US_PER_SECOND = 1_000_000.0


class ResultLike(Protocol):
    """
    What the collectors read from a result (see
    :class:`octtwisted._core.messages.Result`).
    """

    @property
    def error(self) -> str:
        """``""`` on success, else the error text."""

    @property
    def scriptrun_time(self) -> float:
        """Seconds the transaction took."""

    @property
    def custom_timers(self) -> Mapping[str, float]:
        """Timer name -> seconds."""


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


def _tps(transactions: int, duration: float) -> float:
    return transactions / duration if duration > 0 else 0.0


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


#: Binary significant digits kept when staging a value (see _Timer): 11
#: bits, so a staged value is within 1/1024 (about 0.1%) below the real one.
STAGING_BITS = 11


class _Timer:
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

    __slots__ = ("histogram", "staged", "total_us", "min_us", "max_us")

    def __init__(self) -> None:
        self.histogram = _new_histogram()
        self.staged: dict[int, int] = {}
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
            staged.clear()

    def merge_into(self, other: "_Timer") -> None:
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


@attrs.frozen
class Summary:
    """
    The figures of a whole run.

    :ivar transactions: how many results were recorded.
    :ivar errors: how many of them were errors.
    :ivar top_errors: the :data:`TOP_ERRORS` most frequent errors as
        ``(error, count)``, most frequent first (ties: first seen first).
    :ivar duration: seconds the run lasted.
    :ivar transactions_per_second: ``transactions / duration`` (0 when the
        duration is not positive).
    :ivar scriptrun_time: the distribution of transaction times (errors
        included), or ``None`` when there were no transactions.
    :ivar custom_timers: timer name -> its distribution, sorted by name.
    :ivar cannons: how many cannons the run was configured with.
    :ivar cannons_reached: how many cannons the rampup started.
    :ivar dropped: results that could not be delivered to the HQ.
    :ivar starts: the open model's planned, started and dropped starts and
        start lag (None in the closed model).
    """

    transactions: int
    errors: int
    top_errors: tuple[tuple[str, int], ...]
    duration: float
    transactions_per_second: float
    scriptrun_time: TimerStats | None
    custom_timers: dict[str, TimerStats]
    cannons: int
    cannons_reached: int
    dropped: int
    starts: StartFigures | None = None

    def to_dict(self) -> dict[str, Any]:
        """
        The summary as a JSON-ready dict with one key per attribute.
        """
        return {
            "transactions": self.transactions,
            "errors": self.errors,
            "top_errors": [
                {"error": error, "count": count} for error, count in self.top_errors
            ],
            "duration": self.duration,
            "transactions_per_second": self.transactions_per_second,
            "scriptrun_time": (
                None if self.scriptrun_time is None else self.scriptrun_time.to_dict()
            ),
            "custom_timers": {
                name: stats.to_dict() for name, stats in self.custom_timers.items()
            },
            "cannons": self.cannons,
            "cannons_reached": self.cannons_reached,
            "dropped": self.dropped,
            "starts": None if self.starts is None else self.starts.to_dict(),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """
        :meth:`to_dict` as a JSON document.
        """
        return json.dumps(self.to_dict(), indent=indent)

    def format_table(self) -> str:
        """
        A plain-text report for a terminal or a log: the run's figures, the
        timers in milliseconds, and the most frequent errors.
        """
        lines = ["Run summary", "==========="]
        lines += _format_header(self)
        lines.append("")
        lines += _format_timers(self)
        lines.append("")
        lines += _format_errors(self)
        return "\n".join(lines) + "\n"


@attrs.frozen
class Interval:
    """
    The figures of one interval of a run (see :meth:`IntervalStats.take`).

    :ivar duration: seconds the interval lasted.
    :ivar transactions: results recorded in the interval.
    :ivar errors: how many of them were errors.
    :ivar transactions_per_second: ``transactions / duration`` (0 when the
        duration is not positive).
    :ivar p50: median transaction time in seconds, ``None`` without
        transactions.
    :ivar p95: 95th percentile of transaction times in seconds, ``None``
        without transactions.
    """

    duration: float
    transactions: int
    errors: int
    transactions_per_second: float
    p50: float | None
    p95: float | None

    def to_dict(self) -> dict[str, Any]:
        """
        The figures as a JSON-ready dict with one key per attribute.
        """
        return attrs.asdict(self)


class RunStats:
    """
    Collects every result of a run, in constant memory.

    The memory used is two histograms (about 190 KB each) for
    ``scriptrun_time`` (the run's, and the current progress interval's),
    one per distinct custom timer name, and a tally of at most
    :data:`MAX_DISTINCT_ERRORS` error strings plus :data:`OTHER_ERRORS`. It
    does not grow with the number of results; it does grow with the number
    of distinct timer names, which scripts are expected to keep fixed.

    Each result's time is recorded once, into the interval's histogram;
    :meth:`take_interval` (progress) and :meth:`summary` add the interval
    into the run's histogram, an array addition.
    """

    def __init__(self) -> None:
        self._transactions = 0
        self._errors = 0
        self._interval_transactions = 0
        self._interval_errors = 0
        self._error_counts: Counter[str] = Counter()
        self._interval = _Timer()
        self._scriptrun_time = _Timer()
        self._custom_timers: dict[str, _Timer] = {}

    @property
    def transactions(self) -> int:
        """Results recorded so far."""
        return self._transactions + self._interval_transactions

    @property
    def errors(self) -> int:
        """Error results recorded so far."""
        return self._errors + self._interval_errors

    def record(self, result: ResultLike) -> None:
        """
        Count one result: its transaction time, its custom timers and its
        error, if any. Errors are timed too: a failing transaction still
        took that long.
        """
        self._interval_transactions += 1
        self._interval.record(result.scriptrun_time)
        error = result.error
        if error:
            self._interval_errors += 1
            counts = self._error_counts
            if error in counts or len(counts) < MAX_DISTINCT_ERRORS:
                counts[error] += 1
            else:
                counts[OTHER_ERRORS] += 1
        timers = result.custom_timers
        if timers:
            custom = self._custom_timers
            for name, seconds in timers.items():
                timer = custom.get(name)
                if timer is None:
                    timer = custom[name] = _Timer()
                timer.record(seconds)

    def _fold(self) -> tuple[int, int]:
        """
        Add the current interval to the run; return its transactions and
        errors.
        """
        counts = (self._interval_transactions, self._interval_errors)
        self._transactions += self._interval_transactions
        self._errors += self._interval_errors
        self._interval_transactions = self._interval_errors = 0
        self._interval.merge_into(self._scriptrun_time)
        return counts

    def take_interval(self, interval_seconds: float) -> Interval:
        """
        The figures since the previous call (or since the start), then start
        a new interval.

        :param interval_seconds: how long the interval lasted, to compute
            transactions per second.
        """
        timer = self._interval
        p50: float | None = None
        p95: float | None = None
        if timer.count:
            found = timer.percentiles(50.0, 95.0)
            p50, p95 = found[50.0], found[95.0]
        transactions, errors = self._fold()
        return Interval(
            duration=interval_seconds,
            transactions=transactions,
            errors=errors,
            transactions_per_second=_tps(transactions, interval_seconds),
            p50=p50,
            p95=p95,
        )

    def summary(
        self,
        *,
        duration: float,
        cannons: int,
        cannons_reached: int,
        dropped: int = 0,
        starts: StartFigures | None = None,
    ) -> Summary:
        """
        The figures so far.

        :param duration: seconds the run lasted.
        :param cannons: cannons the run was configured with.
        :param cannons_reached: cannons the rampup started (all of them once the rampup is over).
        :param dropped: results that could not be delivered.
        """
        self._fold()
        custom: dict[str, TimerStats] = {}
        for name in sorted(self._custom_timers):
            stats = self._custom_timers[name].stats()
            if stats is not None:
                custom[name] = stats
        return Summary(
            transactions=self._transactions,
            errors=self._errors,
            top_errors=tuple(self._error_counts.most_common(TOP_ERRORS)),
            duration=duration,
            transactions_per_second=_tps(self._transactions, duration),
            scriptrun_time=self._scriptrun_time.stats(),
            custom_timers=custom,
            cannons=cannons,
            cannons_reached=cannons_reached,
            dropped=dropped,
            starts=starts,
        )


# Formatting for Summary.format_table.

_TIMER_COLUMNS = ("count", "min", "mean", "p50", "p90", "p95", "p99", "max")


def _format_ms(seconds: float) -> str:
    """
    Seconds as milliseconds, with about four significant digits.
    """
    ms = seconds * 1000.0
    if ms < 10:
        return f"{ms:.3f}"
    if ms < 100:
        return f"{ms:.2f}"
    if ms < 1000:
        return f"{ms:.1f}"
    return f"{ms:,.0f}"


def _format_duration(seconds: float) -> str:
    text = f"{seconds:,.1f} s"
    if seconds >= 60:
        whole = int(seconds)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        text += f" ({hours}:{minutes:02d}:{secs:02d})"
    return text


def _shorten(text: str, width: int) -> str:
    """
    ``text`` on one line, cut to ``width`` characters.
    """
    text = " ".join(text.split())
    if len(text) > width:
        text = text[: width - 3] + "..."
    return text


def _format_header(summary: Summary) -> list[str]:
    errors = f"{summary.errors:,}"
    if summary.transactions:
        errors += f" ({summary.errors / summary.transactions:.2%})"
    rows = [
        ("Transactions", f"{summary.transactions:,}"),
        ("Errors", errors),
        ("Duration", _format_duration(summary.duration)),
        ("Transactions/s", f"{summary.transactions_per_second:,.2f}"),
        ("Cannons reached", f"{summary.cannons_reached:,} / {summary.cannons:,}"),
        ("Dropped results", f"{summary.dropped:,}"),
    ]
    starts = summary.starts
    if starts is not None:
        rows.append(("Planned starts", f"{starts.planned:,}"))
        rows.append(("Started", f"{starts.started:,}"))
        dropped = f"{starts.dropped:,}"
        if starts.planned:
            dropped += f" ({starts.dropped / starts.planned:.2%}): no idle cannon"
        rows.append(("Dropped starts", dropped))
        if starts.lag is not None:
            lag = starts.lag
            rows.append((
                "Start lag",
                f"p50 {_format_ms(lag.p50)} ms, p99 {_format_ms(lag.p99)} ms, max {_format_ms(lag.max)} ms",
            ))
    label_width = max(len(label) for label, _ in rows)
    return [f"  {label:<{label_width}}  {value}" for label, value in rows]


def _format_timers(summary: Summary) -> list[str]:
    timers: list[tuple[str, TimerStats]] = []
    if summary.scriptrun_time is not None:
        timers.append((SCRIPTRUN_TIME, summary.scriptrun_time))
    timers += summary.custom_timers.items()
    if not timers:
        return ["Timers: no transactions recorded."]

    header: tuple[str, ...] = ("timer (ms)",) + _TIMER_COLUMNS
    rows = [header]
    for name, stats in timers:
        rows.append(
            (_shorten(name, NAME_DISPLAY_WIDTH), f"{stats.count:,}")
            + tuple(
                _format_ms(getattr(stats, column)) for column in _TIMER_COLUMNS[1:]
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = (f"{cell:>{width}}" for cell, width in zip(cells[1:], widths[1:]))
        return "  " + "  ".join((first, *rest))

    rule = "  " + "  ".join("-" * width for width in widths)
    return [line(header), rule] + [line(row) for row in rows[1:]]


def _format_errors(summary: Summary) -> list[str]:
    if not summary.top_errors:
        return ["Errors: none."]
    title = f"Top errors ({len(summary.top_errors)} most frequent)"
    counts = [f"{count:,}" for _, count in summary.top_errors]
    width = max(len("count"), *(len(count) for count in counts))
    lines = [title, f"  {'count':>{width}}  error", f"  {'-' * width}  {'-' * 5}"]
    for (error, _), count in zip(summary.top_errors, counts):
        lines.append(f"  {count:>{width}}  {_shorten(error, ERROR_DISPLAY_WIDTH)}")
    return lines
