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

* A value from 0 to 1 us is recorded as 1 us: the histogram cannot tell 0
  from 1 us, and a transaction that took no measurable time still counts
  ("took less than 1 us" is honest).
* A custom timer value that is negative (a confused clock, a subtraction the
  wrong way round), NaN or infinite is not a time: it is **not recorded**
  into the timer's distribution, only counted per timer and kind by
  :class:`~octtwisted._stats.faults.TimerFaults` (:attr:`RunStats.faults`),
  which warns once per timer and kind; the :class:`Summary` gives the counts
  (``invalid_timer_values``), and the text, the report and the metrics say
  them. So a custom timer's ``count`` is that of its valid values.
* A finite custom timer value above one hour is recorded as one hour and
  counted too (``timer_values_over_one_hour``): it stays in the figures, at
  a value known to be too low, and the summary says so.
* ``scriptrun_time`` (the turret's monotonic clock) and the start lags go
  straight to :meth:`Timer.record <octtwisted._stats.histogram.Timer.record>`,
  which clamps: below 1 us as 1 us (NaN too), above one hour as one hour.

The check costs one chained comparison per custom timer value on the hot
path (``0.0 <= seconds <= HIGHEST_SECONDS``, False for NaN too); anything
else is the rare path, :meth:`TimerFaults.note
<octtwisted._stats.faults.TimerFaults.note>`.

Min, max and mean are exact (over the microsecond values as recorded); the
percentiles come from the histogram, and are clamped into ``[min, max]`` so
that, for instance, a constant load reports the same figure everywhere.
Values are staged in a small dict before they reach the histogram (see
:class:`~octtwisted._stats.histogram.Timer`), which adds at most 0.1% to
the value error.

Parts
=====

With ``--processes``, each worker process records into a :class:`RunStats`
of its own and sends the parent a part
(:class:`~octtwisted._stats.parts.Part`, from :meth:`RunStats.take_part`):
what it recorded since its last part, namely the counts, the error tally's
increments, and for each timer its new values as staged microseconds ->
count with their exact sum, min and max. The parent adds every part into
one :class:`RunStats` (:meth:`RunStats.add_part`), as if it had recorded
those values itself. The merge is exact, not an approximation: a
histogram is a count per bucket, and a staged value is the lowest value
of its histogram's bucket, so adding the staged counts of every part gives
the very histogram one collector would have filled with every value;
counts and sums add up, min and max are those of the mins and maxes, and
so every figure of the :class:`Summary`, percentiles included, is the
same (no percentile is ever averaged). A part's min and max are those of
its own values, so the parent's progress intervals are exact too.

The collector
=============

* :class:`RunStats` sees every result of a run and produces a
  :class:`Summary` at its end; :meth:`RunStats.take_interval` gives the
  figures since the last call (an :class:`Interval`), for a live progress
  line.
* The figures are data; :mod:`octtwisted._stats.table` formats a
  :class:`Summary` as text (:func:`~octtwisted._stats.table.format_table`),
  :mod:`octtwisted._stats.report` as HTML.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Mapping, Protocol

import attrs

from octtwisted._core.thresholds import Outcome
from octtwisted._stats.faults import HIGHEST_SECONDS, TimerFaults, invalid_only, over_one_hour
from octtwisted._stats.histogram import Timer, TimerStats
from octtwisted._stats.parts import Part, TimerPart
from octtwisted._core import logs
from octtwisted._stats.requests import (
    MAX_NAMES,
    OTHER_NAMES,
    RequestFailureRow,
    RequestRow,
    RequestTable,
)
from octtwisted._stats.starts import StartFigures, StartStats

#: The name of the script run timer, beside the scripts' custom timers.
SCRIPTRUN_TIME = "scriptrun_time"

#: Most distinct error strings tallied one by one; past this, new error
#: strings are counted together under :data:`OTHER_ERRORS`.
MAX_DISTINCT_ERRORS = 1000

#: The tally key for errors past :data:`MAX_DISTINCT_ERRORS`.
OTHER_ERRORS = "(other errors)"

#: How many of the most frequent errors a :class:`Summary` names.
TOP_ERRORS = 5


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


def _tps(transactions: int, duration: float) -> float:
    return transactions / duration if duration > 0 else 0.0


@attrs.frozen
class Summary:
    """
    The figures of a whole run.

    :ivar transactions: how many results were recorded.
    :ivar errors: how many of them were errors.
    :ivar top_errors: the :data:`TOP_ERRORS` most frequent errors as
        ``(error, count)``, most frequent first (ties: first seen first).
    :ivar duration: seconds the run lasted: from the start of firing to
        the moment the last cannon had stopped (``firing_time`` +
        ``stop_wait``).
    :ivar transactions_per_second: ``transactions / firing_time`` (0 when
        the firing time is not positive): per firing second.
    :ivar scriptrun_time: the distribution of transaction times (errors
        included), or ``None`` when there were no transactions.
    :ivar custom_timers: timer name -> its distribution, sorted by name.
    :ivar cannons: how many cannons the run was configured with.
    :ivar cannons_reached: how many cannons the rampup started.
    :ivar dropped: results that could not be delivered to the HQ.
    :ivar starts: the open model's planned, started and dropped starts and
        start lag (None in the closed model).
    :ivar thresholds: the config's thresholds, evaluated at the end of the
        run, in the config's order (empty without thresholds).
    :ivar processes: how many processes fired (``--processes``).
    :ivar processes_replaced: worker processes that died during the run
        and were replaced by fresh ones.
    :ivar firing_time: seconds from the start of firing to the moment the
        stop began.
    :ivar stop_wait: seconds the stop waited for the transactions in
        flight (to end, or to be cancelled at the stop timeout).
    :ivar in_flight_at_stop: transactions in flight when the stop began.
    :ivar cpu_peak: the turret's CPU: the largest share of one core
        (1.0: all of it) one of its processes used over one second of the
        run, or None when it was not measured.
    :ivar requests: one row per request name (:mod:`~octtwisted._stats.requests`),
        busiest first.
    :ivar request_failures: the requests' failures by name and reason, most
        frequent first.
    :ivar invalid_timer_values: custom timer name -> kind (``negative``,
        ``nan``, ``infinite``) -> count: the values a script gave that are
        not in the timer's figures (see :mod:`octtwisted._stats.faults`),
        sorted by name; only timers and kinds with some.
    :ivar timer_values_over_one_hour: custom timer name -> how many of its
        values were above one hour, recorded as one hour; only timers with
        some.
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
    thresholds: tuple[Outcome, ...] = ()
    processes: int = 1
    processes_replaced: int = 0
    firing_time: float = 0.0
    stop_wait: float = 0.0
    in_flight_at_stop: int = 0
    cpu_peak: float | None = None
    requests: tuple[RequestRow, ...] = ()
    request_failures: tuple[RequestFailureRow, ...] = ()
    invalid_timer_values: dict[str, dict[str, int]] = attrs.field(factory=dict)
    timer_values_over_one_hour: dict[str, int] = attrs.field(factory=dict)

    @property
    def thresholds_failed(self) -> tuple[Outcome, ...]:
        """The thresholds that did not hold."""
        return tuple(outcome for outcome in self.thresholds if not outcome.passed)

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
            "thresholds": [outcome.to_dict() for outcome in self.thresholds],
            "processes": self.processes,
            "processes_replaced": self.processes_replaced,
            "firing_time": self.firing_time,
            "stop_wait": self.stop_wait,
            "in_flight_at_stop": self.in_flight_at_stop,
            "cpu_peak": self.cpu_peak,
            "requests": [row.to_dict() for row in self.requests],
            "request_failures": [row.to_dict() for row in self.request_failures],
            "invalid_timer_values": {
                name: dict(kinds) for name, kinds in self.invalid_timer_values.items()
            },
            "timer_values_over_one_hour": dict(self.timer_values_over_one_hour),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """
        :meth:`to_dict` as a JSON document.
        """
        return json.dumps(self.to_dict(), indent=indent)


@attrs.frozen
class Interval:
    """
    The figures of one interval of a run (see :meth:`RunStats.take_interval`).

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
        self._interval = Timer()
        self._scriptrun_time = Timer()
        self._custom_timers: dict[str, Timer] = {}
        self._buckets = False
        self._bucket_totals = (0, 0)
        self._part_totals = (0, 0)
        self._part_errors: dict[str, int] = {}
        #: every request of the run's HTTP clients, by name
        self.requests = RequestTable(warn=self._too_many_names)
        #: the custom timer values the timers could not record as they are
        self.faults = TimerFaults()

    log = logs.logger(logs.TURRET)

    def _too_many_names(self, name: str) -> None:
        self.log.warn(
            "More than {limit} request names (the next one: {name!r}): further names are "
            "counted as {other!r}. Group URLs that differ (ids, queries) under one name "
            "with the name= argument of the request, e.g. "
            "self.fast_http.get(url, name='GET /item/{{id}}')",
            limit=MAX_NAMES, name=name[:80], other=OTHER_NAMES,
        )

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
        took that long. Only the script's own custom timers are read: the
        request timers a result carries for the HQ (``request_timers``)
        are the request table's, which has them. A custom timer value
        that is negative, NaN, infinite or above one hour is counted by
        :attr:`faults` (see :mod:`octtwisted._stats.faults`), not recorded
        (above one hour: recorded as one hour).
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
                    timer = custom[name] = Timer(buckets=self._buckets)
                if 0.0 <= seconds <= HIGHEST_SECONDS:  # False for NaN too
                    timer.record(seconds)
                else:
                    self.faults.note(name, seconds, timer)

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
        processes: int = 1,
        processes_replaced: int = 0,
        stop_wait: float = 0.0,
        in_flight_at_stop: int = 0,
    ) -> Summary:
        """
        The figures so far.

        :param duration: seconds the run lasted, ``stop_wait`` included
            (the rate is per second of the rest: the firing time).
        :param stop_wait: seconds the stop waited for transactions in flight.
        :param in_flight_at_stop: transactions in flight when the stop began.
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
        stop_wait = min(max(stop_wait, 0.0), duration)
        firing_time = duration - stop_wait
        return Summary(
            transactions=self._transactions,
            errors=self._errors,
            top_errors=tuple(self._error_counts.most_common(TOP_ERRORS)),
            duration=duration,
            transactions_per_second=_tps(self._transactions, firing_time),
            scriptrun_time=self._scriptrun_time.stats(),
            custom_timers=custom,
            cannons=cannons,
            cannons_reached=cannons_reached,
            dropped=dropped,
            starts=starts,
            processes=processes,
            processes_replaced=processes_replaced,
            firing_time=firing_time,
            stop_wait=stop_wait,
            in_flight_at_stop=in_flight_at_stop,
            requests=self.requests.rows(firing_time),
            request_failures=self.requests.failure_rows(),
            invalid_timer_values=invalid_only(self.faults.counts),
            timer_values_over_one_hour=over_one_hour(self.faults.counts),
        )

    # Over time (a timeline) and thresholds.

    def track_buckets(self) -> None:
        """
        From now on, keep what :meth:`take_bucket` returns. Call it before
        the first result.
        """
        self._buckets = True
        self.requests.track_buckets()
        self._interval.bucket = {}
        for timer in self._custom_timers.values():
            timer.bucket = {}

    def take_bucket(self) -> tuple[int, int, dict[str, dict[int, int]]]:
        """
        What was recorded since the last call: transactions, errors, and
        timer name (``scriptrun_time`` first) -> staged microseconds ->
        count (see :class:`Timer`). Needs :meth:`track_buckets`.
        """
        timers = {SCRIPTRUN_TIME: self._interval.take_bucket()}
        for name, timer in self._custom_timers.items():
            timers[name] = timer.take_bucket()
        total = (
            self._transactions + self._interval_transactions,
            self._errors + self._interval_errors,
        )
        last, self._bucket_totals = self._bucket_totals, total
        return total[0] - last[0], total[1] - last[1], timers

    def timer_value(self, name: str, stat: str, percentile: float | None) -> float | None:
        """
        A statistic of a timer over the run so far (see
        :meth:`Timer.value`), None if the timer has no values.
        """
        if name == SCRIPTRUN_TIME:
            self._fold()
            return self._scriptrun_time.value(stat, percentile)
        timer = self._custom_timers.get(name)
        return None if timer is None else timer.value(stat, percentile)

    def timer_names(self) -> tuple[str, ...]:
        """The custom timers seen so far, sorted."""
        return tuple(sorted(self._custom_timers))

    def request_value(self, name: str, stat: str, percentile: float | None) -> float | None:
        """
        A statistic of one request name so far (see
        :meth:`RequestTable.value`), None if it has no requests.
        """
        return self.requests.value(name, stat, percentile)

    def request_names(self) -> tuple[str, ...]:
        """The request names seen so far, sorted."""
        return tuple(sorted(self.requests.names))

    def timers(self) -> dict[str, tuple[Timer, ...]]:
        """
        Timer name (``scriptrun_time`` first) -> the timers that hold its
        values so far, for a reader that must not take anything from the
        figures (see :mod:`octtwisted._stats.scrape`): the transactions'
        values are in two timers, the interval's and the run's.
        """
        timers: dict[str, tuple[Timer, ...]] = {
            SCRIPTRUN_TIME: (self._interval, self._scriptrun_time)
        }
        for name, timer in self._custom_timers.items():
            if name != SCRIPTRUN_TIME:
                timers[name] = (timer,)
        return timers

    def top_errors(self, count: int) -> tuple[tuple[str, int], ...]:
        """
        The ``count`` most frequent error texts with their counts.
        """
        return tuple(self._error_counts.most_common(count))

    # Parts (see the module's docstring).

    def take_part(self, starts: StartStats | None = None) -> Part:
        """
        What was recorded (or added) since the last call, or since the
        start, for another process's :meth:`add_part`; with ``starts``,
        its :meth:`StartStats.take_part` too. Takes nothing from the other
        figures (intervals, buckets, summary). A custom timer named
        ``scriptrun_time`` is left out: that name is the transactions'.
        """
        total = self.transactions, self.errors
        last, self._part_totals = self._part_totals, total
        error_counts: dict[str, int] = {}
        if total[1] != last[1]:
            taken = self._part_errors
            for error, count in self._error_counts.items():
                if count != taken.get(error, 0):
                    error_counts[error] = count - taken.get(error, 0)
            self._part_errors = dict(self._error_counts)
        timers: dict[str, TimerPart] = {}
        run_times = TimerPart.take(self._interval, self._scriptrun_time)
        if run_times is not None:
            timers[SCRIPTRUN_TIME] = run_times
        for name, timer in self._custom_timers.items():
            values = TimerPart.take(timer)
            if values is not None and name != SCRIPTRUN_TIME:
                timers[name] = values
        faults = self.faults.take_part()
        faults.pop(SCRIPTRUN_TIME, None)
        return Part(
            transactions=total[0] - last[0],
            errors=total[1] - last[1],
            error_counts=error_counts,
            timers=timers,
            timer_faults=faults,
            starts=None if starts is None else starts.take_part(),
            requests=self.requests.take_part(),
        )

    def add_part(self, part: Part, starts: StartStats | None = None) -> None:
        """
        Count another process's part (see :meth:`take_part`) as if its
        results were recorded here now: they show in the next interval,
        bucket, summary and timer values. Its errors are tallied as
        :meth:`record` tallies them, and its ``(other errors)`` add to
        this one's. Its starts go into ``starts``.

        :raises ValueError: the part has starts but ``starts`` is None.
        """
        if part.starts is not None:
            if starts is None:
                raise ValueError("a part with starts (the open model), but no StartStats")
            starts.add_part(part.starts)
        self._interval_transactions += part.transactions
        self._interval_errors += part.errors
        counts = self._error_counts
        # As record does; a worker's "(other errors)" land in ours either way.
        for error, count in part.error_counts.items():
            if error in counts or len(counts) < MAX_DISTINCT_ERRORS:
                counts[error] += count
            else:
                counts[OTHER_ERRORS] += count
        custom = self._custom_timers
        for name, values in part.timers.items():
            if name == SCRIPTRUN_TIME:
                timer = self._interval
            else:
                found = custom.get(name)
                timer = custom[name] = Timer(buckets=self._buckets) if found is None else found
            values.add_to(timer)
        if part.timer_faults:
            self.faults.add_part(part.timer_faults)
            for name in part.timer_faults:  # a timer with invalid values only is seen too
                if name not in custom and name != SCRIPTRUN_TIME:
                    custom[name] = Timer(buckets=self._buckets)
        if part.requests:
            self.requests.add_part(part.requests)
