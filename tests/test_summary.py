"""
Tests for :mod:`octtwisted._stats.summary` (run statistics on HDR histograms)
and :mod:`octtwisted._stats.table` (their plain-text table).
"""

from __future__ import annotations

import gc
import json
import math
import sys
import types
import weakref
from typing import Iterable, Mapping

import attrs
import numpy
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.messages import Result
from octtwisted._stats.histogram import TimerStats
from octtwisted._stats.summary import MAX_DISTINCT_ERRORS, OTHER_ERRORS, Interval, RunStats, Summary
from octtwisted._stats.table import ERROR_DISPLAY_WIDTH, format_table

SUMMARY_KEYS = {
    "transactions",
    "errors",
    "top_errors",
    "duration",
    "transactions_per_second",
    "scriptrun_time",
    "custom_timers",
    "cannons",
    "thresholds",
    "cannons_reached",
    "dropped",
    "starts",
    "requests",
    "request_failures",
    "processes",
    "processes_replaced",
    "firing_time",
    "stop_wait",
    "in_flight_at_stop",
    "cpu_peak",
    "invalid_timer_values",
    "timer_values_over_one_hour",
}
TIMER_KEYS = {"count", "min", "mean", "p50", "p90", "p95", "p99", "max"}


def result(
    scriptrun_time: float = 0.05,
    error: str = "",
    custom_timers: Mapping[str, float] | None = None,
) -> Result:
    return Result(
        turret_name="t",
        elapsed=0.0,
        epoch=0.0,
        scriptrun_time=scriptrun_time,
        error=error,
        custom_timers=custom_timers or {},
    )


def record_all(stats: RunStats, results: Iterable[Result]) -> None:
    for r in results:
        stats.record(r)


def summarise(stats: RunStats, duration: float = 10.0) -> Summary:
    return stats.summary(duration=duration, cannons=10, cannons_reached=10)


def footprint(root: object) -> tuple[int, int]:
    """
    How many objects, and how many bytes, are reachable from ``root``
    (classes, modules and functions left out: they are shared, not data).
    """
    shared = (
        type,
        types.ModuleType,
        types.FunctionType,
        types.BuiltinFunctionType,
        types.MethodType,
        types.CodeType,
    )
    seen: set[int] = set()
    stack = [root]
    objects = size = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, shared):
            continue
        seen.add(id(obj))
        objects += 1
        size += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return objects, size


class AccuracyTests(SynchronousTestCase):
    """
    The figures agree with numpy's, computed exactly on the same samples.
    """

    def assertWithinOnePercent(self, name: str, got: float, expected: float) -> None:
        self.assertTrue(
            math.isclose(got, expected, rel_tol=0.01),
            f"{name}: {got!r} is not within 1% of {expected!r}",
        )

    def check(self, samples: numpy.ndarray) -> None:
        stats = RunStats()
        record_all(stats, (result(float(s)) for s in samples))
        timer = summarise(stats).scriptrun_time
        assert timer is not None
        self.assertEqual(timer.count, len(samples))
        self.assertWithinOnePercent("min", timer.min, float(samples.min()))
        self.assertWithinOnePercent("max", timer.max, float(samples.max()))
        self.assertWithinOnePercent("mean", timer.mean, float(samples.mean()))
        for p in (50, 90, 95, 99):
            self.assertWithinOnePercent(
                f"p{p}", getattr(timer, f"p{p}"), float(numpy.percentile(samples, p))
            )

    def test_lognormal(self) -> None:
        """
        Latencies spread lognormally around 50 ms (a typical web service,
        with a long tail) are summarised within 1% of the exact figures.
        """
        rng = numpy.random.default_rng(20240501)
        self.check(rng.lognormal(mean=math.log(0.05), sigma=0.5, size=20_000))

    def test_uniform(self) -> None:
        """
        Latencies spread uniformly from 1 ms to 2 s, three orders of
        magnitude, are summarised within 1% of the exact figures.
        """
        rng = numpy.random.default_rng(7)
        self.check(rng.uniform(0.001, 2.0, size=20_000))

    def test_exponential(self) -> None:
        """
        Exponentially spread latencies (many fast, a few very slow) are
        summarised within 1% of the exact figures.
        """
        rng = numpy.random.default_rng(99)
        self.check(0.002 + rng.exponential(0.1, size=10_000))

    def test_constant(self) -> None:
        """
        A constant latency is reported as exactly that value everywhere,
        although the histogram only knows the bucket it fell into.
        """
        samples = numpy.full(10_000, 0.05)
        self.check(samples)
        stats = RunStats()
        record_all(stats, (result(0.05) for _ in range(100)))
        timer = summarise(stats).scriptrun_time
        self.assertEqual(
            timer, TimerStats(100, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05)
        )

    def test_zero_and_out_of_range(self) -> None:
        """
        A time of 0 (or less, or NaN) counts as 1 us; a time beyond an hour
        (or infinite) counts as one hour: no value is lost or crashes the
        turret, and the percentiles stay within min..max.
        """
        stats = RunStats()
        times = [0.0, -1.0, float("nan"), 7200.0, float("inf"), 0.5]
        record_all(stats, (result(t) for t in times))
        timer = summarise(stats).scriptrun_time
        assert timer is not None
        self.assertEqual(timer.count, len(times))
        self.assertEqual(timer.min, 1e-6)
        self.assertEqual(timer.max, 3600.0)
        for p in (timer.p50, timer.p90, timer.p95, timer.p99):
            self.assertTrue(timer.min <= p <= timer.max)


class ErrorTests(SynchronousTestCase):
    """
    Errors are counted, and the most frequent ones named.
    """

    def test_counting_and_top_five(self) -> None:
        """
        Error results are counted and tallied by text; successes are not;
        the five most frequent errors come most frequent first, and the
        rarer ones are left out.
        """
        stats = RunStats()
        frequencies = {
            "E-a": 2, "E-b": 7, "E-c": 1, "E-d": 5, "E-e": 6, "E-f": 3, "E-g": 4
        }
        for error, count in frequencies.items():
            record_all(stats, (result(error=error) for _ in range(count)))
        record_all(stats, (result() for _ in range(10)))
        summary = summarise(stats)
        self.assertEqual(summary.transactions, 28 + 10)
        self.assertEqual(summary.errors, 28)
        self.assertEqual(
            summary.top_errors,
            (("E-b", 7), ("E-e", 6), ("E-d", 5), ("E-g", 4), ("E-f", 3)),
        )

    def test_ties_first_seen_first(self) -> None:
        """
        Errors as frequent as each other are listed in the order they were
        first seen, so the report is stable.
        """
        stats = RunStats()
        record_all(stats, (result(error=e) for e in ["z", "y", "x", "y", "z", "x"]))
        self.assertEqual(summarise(stats).top_errors, (("z", 2), ("y", 2), ("x", 2)))

    def test_distinct_errors_bounded(self) -> None:
        """
        Past MAX_DISTINCT_ERRORS distinct texts, new texts are counted
        together under OTHER_ERRORS, while texts already seen keep their
        own count: the tally cannot grow without bound.
        """
        stats = RunStats()
        extra = 500
        record_all(
            stats,
            (result(error=f"error {i}") for i in range(MAX_DISTINCT_ERRORS + extra)),
        )
        record_all(stats, (result(error="error 0") for _ in range(extra + 10)))
        summary = summarise(stats)
        self.assertEqual(summary.errors, MAX_DISTINCT_ERRORS + 2 * extra + 10)
        self.assertEqual(
            summary.top_errors[:2], (("error 0", extra + 11), (OTHER_ERRORS, extra))
        )
        # The tally itself: the texts kept, plus the one shared key.
        self.assertEqual(len(stats._error_counts), MAX_DISTINCT_ERRORS + 1)


class CustomTimerTests(SynchronousTestCase):
    def test_per_name(self) -> None:
        """
        Each custom timer gets its own figures, counting only the results
        that carried it, and the timers come sorted by name.
        """
        stats = RunStats()
        both = {"render": 0.02, "db": 0.01}
        record_all(stats, (result(0.1, custom_timers=both) for _ in range(30)))
        record_all(stats, (result(0.1, custom_timers={"db": 0.03}) for _ in range(10)))
        record_all(stats, (result(0.1) for _ in range(5)))
        summary = summarise(stats)
        self.assertEqual(list(summary.custom_timers), ["db", "render"])
        db, render = summary.custom_timers["db"], summary.custom_timers["render"]
        self.assertEqual((db.count, db.min, db.max), (40, 0.01, 0.03))
        self.assertAlmostEqual(db.mean, (30 * 0.01 + 10 * 0.03) / 40)
        # A percentile between min and max is the top of its histogram
        # bucket: right within 0.1%.
        self.assertTrue(math.isclose(db.p50, 0.01, rel_tol=1e-3), db.p50)
        self.assertEqual(db.p90, 0.03)
        self.assertEqual(
            render, TimerStats(30, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02)
        )
        assert summary.scriptrun_time is not None
        self.assertEqual(summary.scriptrun_time.count, 45)


class EmptyRunTests(SynchronousTestCase):
    def test_zero_transactions(self) -> None:
        """
        A run with no results summarises without error: no timer figures,
        no errors, zero transactions per second, and it still renders.
        """
        summary = summarise(RunStats(), duration=30.0)
        self.assertEqual(summary.transactions, 0)
        self.assertEqual(summary.errors, 0)
        self.assertEqual(summary.top_errors, ())
        self.assertIsNone(summary.scriptrun_time)
        self.assertEqual(summary.custom_timers, {})
        self.assertEqual(summary.transactions_per_second, 0.0)
        self.assertIsNone(json.loads(summary.to_json())["scriptrun_time"])
        self.assertIn("no transactions", format_table(summary))

    def test_zero_duration(self) -> None:
        """
        A zero duration gives zero transactions per second, not a
        ZeroDivisionError.
        """
        stats = RunStats()
        stats.record(result())
        self.assertEqual(summarise(stats, duration=0.0).transactions_per_second, 0.0)


class SerialisationTests(SynchronousTestCase):
    def make(self) -> Summary:
        stats = RunStats()
        login = {"login": 0.2}
        record_all(stats, (result(0.05, custom_timers=login) for _ in range(40)))
        record_all(stats, (result(0.5, error="TimeoutError") for _ in range(10)))
        return stats.summary(duration=5.0, cannons=10, cannons_reached=8, dropped=3)

    def test_to_dict(self) -> None:
        """
        to_dict has exactly one key per Summary attribute, with timers as
        dicts and top errors as error/count records.
        """
        d = self.make().to_dict()
        self.assertEqual({field.name for field in attrs.fields(Summary)}, SUMMARY_KEYS)
        self.assertEqual(set(d), SUMMARY_KEYS)
        self.assertEqual(set(d["scriptrun_time"]), TIMER_KEYS)
        self.assertEqual(set(d["custom_timers"]), {"login"})
        self.assertEqual(set(d["custom_timers"]["login"]), TIMER_KEYS)
        self.assertEqual(d["top_errors"], [{"error": "TimeoutError", "count": 10}])
        self.assertEqual(
            [d[key] for key in ("transactions", "errors", "duration")],
            [50, 10, 5.0],
        )
        self.assertEqual(d["transactions_per_second"], 10.0)
        self.assertEqual(
            [d[key] for key in ("cannons", "cannons_reached", "dropped")],
            [10, 8, 3],
        )
        self.assertEqual(d["scriptrun_time"]["count"], 50)
        self.assertEqual(d["custom_timers"]["login"]["p99"], 0.2)

    def test_json_round_trip(self) -> None:
        """
        to_json is indented JSON that reads back as to_dict.
        """
        summary = self.make()
        text = summary.to_json()
        self.assertIn("\n  ", text)
        self.assertEqual(json.loads(text), summary.to_dict())


class FormatTableTests(SynchronousTestCase):
    def test_figures_shown(self) -> None:
        """
        The table shows the run's counts, rate, cannons and dropped
        results, a row per timer in milliseconds, and the top errors.
        """
        stats = RunStats()
        login = {"login": 1.5}
        record_all(stats, (result(0.05, custom_timers=login) for _ in range(1_230)))
        record_all(stats, (result(0.05, error="ValueError: bad") for _ in range(4)))
        table = format_table(stats.summary(duration=617.0, cannons=10, cannons_reached=8, dropped=3))
        lines = table.splitlines()

        def row(label: str) -> list[str]:
            [line] = [line for line in lines if line.strip().startswith(label)]
            return line.split()

        self.assertEqual(row("Transactions ")[1:], ["1,234"])
        self.assertEqual(row("Errors")[1:], ["4", "(0.32%)"])
        self.assertEqual(row("Transactions/s")[1:], ["2.00"])
        self.assertEqual(row("Cannons reached")[2:], ["8", "/", "10"])
        self.assertEqual(row("Dropped results")[2:], ["3"])
        self.assertIn("617.0 s (0:10:17)", table)
        self.assertEqual(
            row("scriptrun_time"), ["scriptrun_time", "1,234"] + ["50.00"] * 7
        )
        self.assertEqual(row("login"), ["login", "1,230"] + ["1,500"] * 7)
        self.assertEqual(row("4 "), ["4", "ValueError:", "bad"])

    def test_long_errors_cut(self) -> None:
        """
        A long, multi-line error is shown on one line, cut to about
        ERROR_DISPLAY_WIDTH characters.
        """
        error = "RuntimeError: line one\n" + "x" * 500
        stats = RunStats()
        stats.record(result(error=error))
        table = format_table(summarise(stats))
        self.assertNotIn("x" * 500, table)
        [line] = [line for line in table.splitlines() if "RuntimeError" in line]
        self.assertIn("RuntimeError: line one xxx", line)
        self.assertLessEqual(len(line.split(None, 1)[1]), ERROR_DISPLAY_WIDTH)


class IntervalTests(SynchronousTestCase):
    def test_take_resets(self) -> None:
        """
        Each take reports only the results since the previous one, with
        transactions per second computed from the interval's length, and
        no percentiles for an interval without transactions.
        """
        stats = RunStats()
        record_all(stats, (result(0.01) for _ in range(90)))
        record_all(stats, (result(0.2, error="boom") for _ in range(10)))
        first = stats.take_interval(2.0)
        self.assertEqual(
            attrs.evolve(first, p50=None),
            Interval(
                duration=2.0,
                transactions=100,
                errors=10,
                transactions_per_second=50.0,
                p50=None,
                p95=0.2,
            ),
        )
        # Between min and max, the top of the histogram bucket: within 0.1%.
        assert first.p50 is not None
        self.assertTrue(math.isclose(first.p50, 0.01, rel_tol=1e-3), first.p50)
        self.assertEqual(stats.take_interval(1.0), Interval(1.0, 0, 0, 0.0, None, None))
        record_all(stats, (result(0.3) for _ in range(30)))
        self.assertEqual(stats.take_interval(4.0), Interval(4.0, 30, 0, 7.5, 0.3, 0.3))
        # Every interval also counts in the run's summary.
        summary = stats.summary(duration=7.0, cannons=1, cannons_reached=1)
        self.assertEqual((summary.transactions, summary.errors), (130, 10))
        assert summary.scriptrun_time is not None
        self.assertEqual(summary.scriptrun_time.max, 0.3)

    def test_to_dict(self) -> None:
        """
        An interval serialises to a JSON-ready dict.
        """
        stats = RunStats()
        stats.record(result(0.25))
        self.assertEqual(
            json.loads(json.dumps(stats.take_interval(0.5).to_dict())),
            {
                "duration": 0.5,
                "transactions": 1,
                "errors": 0,
                "transactions_per_second": 2.0,
                "p50": 0.25,
                "p95": 0.25,
            },
        )


class MemoryTests(SynchronousTestCase):
    def test_flat_over_long_runs(self) -> None:
        """
        Recording 200,000 more results (varied times, a custom timer, and a
        new error text every tenth result) adds no objects and no bytes to
        what RunStats holds, keeps the same histogram counters, and keeps
        no reference to the results themselves. Keeping a list of samples,
        or of results, would add hundreds of thousands of objects.
        """
        stats = RunStats()
        serial = 0

        def feed(n: int) -> None:
            nonlocal serial
            for _ in range(n):
                serial += 1
                stats.record(
                    result(
                        (serial % 4_999 + 1) * 1e-4,
                        error=f"error #{serial}" if serial % 10 == 0 else "",
                        custom_timers={"db": (serial % 97 + 1) * 1e-3},
                    )
                )

        # Warm up until every structure is at its bounded size: the error
        # tally is full, every counter is a large int.
        feed(30_000)  # every staged count past 256, out of the small-int cache
        timers = [stats._scriptrun_time, stats._custom_timers["db"]]
        histograms = [timer.histogram for timer in timers]
        counts = [(h.counts, len(h.counts)) for h in histograms]
        objects, size = footprint(stats)

        feed(200_000)
        probe = result(error="probe", custom_timers={"db": 0.05})
        stats.record(probe)
        gone = weakref.ref(probe)
        del probe

        self.assertIsNone(gone(), "RunStats kept a reference to a result")
        self.assertEqual(
            [(h.counts, len(h.counts)) for h in histograms], counts
        )
        self.assertEqual(
            [stats._scriptrun_time, stats._custom_timers["db"]], timers
        )
        self.assertEqual([timer.histogram for timer in timers], histograms)
        objects_after, size_after = footprint(stats)
        self.assertEqual(objects_after, objects)
        # Counters growing past a power of 2**30 may take 4 more bytes.
        self.assertLess(size_after - size, 64)
        self.assertEqual(summarise(stats).transactions, 230_001)
