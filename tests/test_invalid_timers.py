"""
Custom timer values a script got wrong (:mod:`octtwisted._stats.faults`):
negative, NaN and infinite values are left out of the timer's figures and
counted, values above one hour are recorded as one hour and counted; both
are said in the log (once per timer and kind), the summary text and JSON,
the HTML report, the parts of ``--processes`` and the Prometheus metrics.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import attrs
from twisted.logger import LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core import logs
from octtwisted._core.thresholds import evaluate, parse_thresholds
from octtwisted._edge.metrics import TurretCollector, TurretProbes
from octtwisted._firing.lifecycle import State
from octtwisted._stats.faults import TimerFaults, fault_kind
from octtwisted._stats.histogram import Timer
from octtwisted._stats.parts import Part
from octtwisted._stats.report import ReportData, render
from octtwisted._stats.summary import RunStats, Summary
from octtwisted._stats.table import format_table
from tests.helpers import TurretProcess, write_config
from tests.test_metrics import FakeResult, FakeRun, scrape
from tests.test_summary import result


def summarise(stats: RunStats) -> Summary:
    return stats.summary(duration=1.0, cannons=1, cannons_reached=1)


def record(stats: RunStats, name: str, *values: float) -> None:
    """One transaction (10 ms) per value, timing ``name`` as that value."""
    for value in values:
        stats.record(result(0.01, custom_timers={name: value}))


class Warnings:
    """The fault warnings logged while a test runs."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: list[LogEvent] = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def seen(self) -> list[tuple[str, float]]:
        """(timer, value) of each warning about a timer value."""
        return [
            (event["timer"], event["value"]) for event in self.events
            if event.get("log_namespace") == logs.TURRET and "timer" in event
        ]


class RecordTests(SynchronousTestCase):
    """RunStats.record and what the summary says of the values."""

    def test_invalid_values_left_out(self) -> None:
        """
        Negative, NaN and infinite values are not in the timer's figures
        (no 1 us, no one hour), only counted by kind; 0 and normal values
        are recorded (0 as 1 us, "less than 1 us"); the transactions all
        count.
        """
        stats = RunStats()
        record(stats, "login", 0.2, -0.5, math.nan, math.inf, -math.inf, 0.0, 0.3, -1e-9)
        summary = summarise(stats)
        login = summary.custom_timers["login"]
        self.assertEqual((login.count, login.min, login.max), (3, 1e-6, 0.3))
        self.assertAlmostEqual(login.mean, (0.2 + 1e-6 + 0.3) / 3, places=6)
        self.assertEqual(summary.transactions, 8)
        assert summary.scriptrun_time is not None
        self.assertEqual(summary.scriptrun_time.count, 8)
        self.assertEqual(summary.invalid_timer_values,
                         {"login": {"negative": 2, "nan": 1, "infinite": 2}})
        found = json.loads(summary.to_json())
        self.assertEqual(found["invalid_timer_values"],
                         {"login": {"negative": 2, "nan": 1, "infinite": 2}})
        self.assertEqual(found["timer_values_over_one_hour"], {})
        self.assertEqual(found["custom_timers"]["login"]["count"], 3)

    def test_over_one_hour_recorded_as_one_hour_and_counted(self) -> None:
        """
        A finite value above one hour is recorded as one hour and counted;
        one hour itself is a valid value, not counted.
        """
        stats = RunStats()
        record(stats, "batch", 7200.0, 3600.0, 1e300, 0.5)
        summary = summarise(stats)
        batch = summary.custom_timers["batch"]
        self.assertEqual((batch.count, batch.min, batch.max), (4, 0.5, 3600.0))
        self.assertEqual(summary.timer_values_over_one_hour, {"batch": 2})
        found = summary.to_dict()
        self.assertEqual(found["invalid_timer_values"], {})
        self.assertEqual(found["timer_values_over_one_hour"], {"batch": 2})

    def test_fault_kind(self) -> None:
        """fault_kind names what is wrong, and nothing for 0 .. one hour."""
        self.assertEqual(fault_kind(-1e-300), "negative")
        self.assertEqual(fault_kind(-5.0), "negative")
        self.assertEqual(fault_kind(math.nan), "nan")
        self.assertEqual(fault_kind(math.inf), "infinite")
        self.assertEqual(fault_kind(-math.inf), "infinite")
        self.assertEqual(fault_kind(3600.5), "over_one_hour")
        for valid in (0.0, -0.0, 1e-9, 1.0, 3600.0):
            self.assertIsNone(fault_kind(valid), valid)

    def test_the_quick_check_agrees(self) -> None:
        """
        The one comparison RunStats.record makes lets through exactly the
        values fault_kind finds nothing wrong with (so note is never called
        for a valid value, and no faulty value is recorded unseen).
        """
        for value in (0.0, -0.0, 1e-9, 3600.0, 3600.0000001, -1e-300, math.nan, math.inf,
                      -math.inf, 1e300, 0.25):
            self.assertEqual(0.0 <= value <= 3600.0, fault_kind(value) is None, value)

    def test_warned_once_per_timer_and_kind(self) -> None:
        """
        The first value of each kind for each timer is logged, naming the
        timer and the value; later ones are only counted. A new run (a new
        RunStats) warns again.
        """
        warnings = Warnings(self)
        stats = RunStats()
        record(stats, "login", -0.5, -0.25, -2.0)
        record(stats, "pay", -1.0, 0.1, -3.0)
        record(stats, "login", math.nan, math.nan, 0.1, 7200.0, 9000.0)
        self.assertEqual(
            [(timer, str(value)) for timer, value in warnings.seen()],
            [("login", "-0.5"), ("pay", "-1.0"), ("login", "nan"), ("login", "7200.0")],
        )
        texts = [event["log_format"] for event in warnings.events if "timer" in event]
        self.assertTrue(all("counted, not logged" in text for text in texts), texts)
        self.assertEqual(warnings.events[0]["log_level"].name, "warn")
        self.assertEqual(stats.faults.to_dict(), {
            "login": {"negative": 3, "nan": 2, "over_one_hour": 2}, "pay": {"negative": 2},
        })
        record(RunStats(), "login", -0.5)
        self.assertEqual(len(warnings.seen()), 5)

    def test_only_invalid_values(self) -> None:
        """
        A timer whose every value was invalid has no figures (no row) but
        is seen: its invalid values are said, and a threshold on it fails
        with no value (nothing valid to judge), without the "no timer
        named" note.
        """
        stats = RunStats()
        record(stats, "clock", -0.5, -0.5)
        self.assertEqual(stats.timer_names(), ("clock",))
        thresholds = parse_thresholds({"clock": ["p95 < 1"]})
        outcome, = evaluate(thresholds, stats, transactions=2, errors=0, duration=1.0)
        self.assertEqual((outcome.value, outcome.passed, outcome.note), (None, False, ""))
        summary = summarise(stats)
        self.assertEqual(summary.custom_timers, {})
        self.assertEqual(summary.to_dict()["invalid_timer_values"], {"clock": {"negative": 2}})

    def test_timer_record_unchanged(self) -> None:
        """
        A Timer fed directly (the transactions' times, the start lags:
        measured by the turret) still clamps: the check is the custom
        timers' alone.
        """
        timer = Timer()
        timer.record(-1.0)
        self.assertEqual(timer.count, 1)


class TextTests(SynchronousTestCase):
    """The summary text, the thresholds and the HTML report say it."""

    def summary(self) -> Summary:
        stats = RunStats()
        record(stats, "login", 0.2, -0.5, -0.25, math.nan, 0.3)
        record(stats, "batch", 7200.0, 1.0)
        record(stats, "fine", 0.1)
        thresholds = parse_thresholds({"login": ["p95 < 1"], "fine": ["max < 1"]})
        summary = summarise(stats)
        return attrs.evolve(summary, thresholds=evaluate(
            thresholds, stats, transactions=summary.transactions, errors=0, duration=1.0))

    def test_summary_text(self) -> None:
        """
        The text has one line per timer with invalid values (total, then
        by kind), one per timer with values above one hour, after the
        timers table; a timer without faults gets none.
        """
        text = format_table(self.summary())
        self.assertIn(
            '  timer "login": 3 invalid values (negative: 2, NaN: 1), not in its figures\n', text)
        self.assertIn('  timer "batch": 1 value above one hour, counted as one hour\n', text)
        self.assertNotIn('timer "fine"', text)
        self.assertLess(text.index("not in its figures"), text.index("Errors: none"))
        clean = RunStats()
        record(clean, "login", 0.2)
        self.assertNotIn("invalid", format_table(summarise(clean)))

    def test_thresholds_note(self) -> None:
        """
        Thresholds judge a timer's valid values; the thresholds section
        says so next to the verdicts, for each judged timer with invalid
        values.
        """
        summary = self.summary()
        self.assertTrue(all(outcome.passed for outcome in summary.thresholds))
        text = format_table(summary)
        thresholds = text[text.index("Thresholds ("):]
        self.assertIn('timer "login" judged on its valid values: 3 invalid values left out',
                      thresholds)
        self.assertNotIn('"fine"', thresholds)

    def test_report_note(self) -> None:
        """
        The HTML report's timers section shows the same lines, and its
        thresholds section the same note, escaped.
        """
        page = render(ReportData(
            title="t", settings=(), summary=self.summary(), timeline={}, top_errors=()))
        timers = page[page.index('<section id="timers">'):]
        timers = timers[: timers.index("</section>")]
        self.assertIn("timer &quot;login&quot;: 3 invalid values (negative: 2, NaN: 1), "
                      "not in its figures", timers)
        self.assertIn("timer &quot;batch&quot;: 1 value above one hour", timers)
        thresholds = page[page.index('<section id="thresholds">'):]
        thresholds = thresholds[: thresholds.index("</section>")]
        self.assertIn("timer &quot;login&quot; judged on its valid values: 3 invalid values "
                      "left out", thresholds)


class PartsTests(SynchronousTestCase):
    """The counts travel in the parts of ``--processes``."""

    def test_faults_travel_and_add_up(self) -> None:
        """
        Two workers' faults, sent through JSON in several parts, add up in
        the parent to those of one collector that recorded every value;
        the parent logs nothing (the workers did), and a timer a worker
        saw only invalid values of is seen by the parent too.
        """
        workers, reference, parent = [RunStats(), RunStats()], RunStats(), RunStats()
        plan = [
            (0, "login", (-0.5, 0.2, math.nan)),
            (1, "login", (-1.0, 7200.0)),
            (1, "clock", (-0.5,)),
            (0, "login", (math.inf, 0.1)),
        ]
        for index, name, values in plan:
            record(workers[index], name, *values)
            record(reference, name, *values)
        warnings = Warnings(self)
        for index in (0, 1, 0, 1):  # the second round: nothing new
            part = workers[index].take_part()
            wire = json.loads(json.dumps(part.to_wire()))
            parent.add_part(Part.from_wire(wire))
        self.assertEqual(warnings.seen(), [])
        merged, expected = summarise(parent), summarise(reference)
        self.assertEqual(parent.faults.to_dict(), {
            "clock": {"negative": 1},
            "login": {"negative": 2, "nan": 1, "infinite": 1, "over_one_hour": 1},
        })
        self.assertEqual(merged.timer_values_over_one_hour, {"login": 1})
        self.assertEqual(merged, expected)
        self.assertEqual(parent.timer_names(), reference.timer_names())

    def test_wire(self) -> None:
        """
        A part's faults are on the wire under ``timer_faults`` only when
        there are some; a part with nothing but faults is not empty.
        """
        worker = RunStats()
        record(worker, "login", -0.5)
        worker.take_part()
        self.assertTrue(worker.take_part().empty)
        faults = TimerFaults()
        faults.note("login", -0.5, Timer())
        part = Part(0, 0, timer_faults=faults.take_part())
        self.assertFalse(part.empty)
        self.assertEqual(part.to_wire(), {"transactions": 0, "errors": 0,
                                          "timer_faults": {"login": {"negative": 1}}})
        self.assertEqual(Part.from_wire(part.to_wire()), part)


class MetricsTests(SynchronousTestCase):
    def test_counter_and_histogram(self) -> None:
        """
        Invalid values are not in ``oct_custom_timer_seconds``; they are
        counted by ``oct_timer_invalid_values_total{timer,kind}``, which
        keeps counting across runs; a turret without any shows no such
        metric.
        """
        collector = TurretCollector(
            name="t1", uuid="u1", probes=TurretProbes(state=lambda: State.READY,
                                                      reactor_lag=lambda: 0.0))
        run = FakeRun()
        collector.run_made(run)
        run.stats.record(FakeResult(0.01, custom_timers={"login": 0.002}))
        self.assertNotIn("oct_timer_invalid_values", scrape(collector))
        for value in (-0.5, math.nan, -1.0, 0.003):
            run.stats.record(FakeResult(0.01, custom_timers={"login": value}))
        found = scrape(collector)
        counts = {labels["kind"]: value for name, labels, value in found["oct_timer_invalid_values"]
                  if labels["timer"] == "login"}
        self.assertEqual(counts, {"negative": 2, "nan": 1})
        histogram = {name: value for name, labels, value in found["oct_custom_timer_seconds"]
                     if name.endswith("_count")}
        self.assertEqual(histogram, {"oct_custom_timer_seconds_count": 2})
        next_run = FakeRun()
        collector.run_made(next_run)
        next_run.stats.record(FakeResult(0.01, custom_timers={"login": -2.0}))
        found = scrape(collector)
        counts = {labels["kind"]: value for _, labels, value in found["oct_timer_invalid_values"]}
        self.assertEqual(counts, {"negative": 3, "nan": 1})


class StandaloneTests(TestCase):
    """End to end: twistd runs of a script whose timer is sometimes negative."""

    timeout = 90

    async def run_turret(self, *args: str) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
        """
        A standalone run of ``negative_timer.py`` (2 cannons, 1.5 s):
        its JSON summary, its output, and its results file's rows.
        """
        folder = Path(self.mktemp()).absolute()
        config = write_config(folder, script="negative_timer.py", hq_address=None,
                              hq_publisher=None, hq_rc=None, cannons=2, rampup=0)
        turret = TurretProcess(
            ["-c", str(config), "--standalone", "--duration", "1.5", "--summary-json",
             "summary.json", "--results", "results.jsonl", *args],
            cwd=folder,
        )
        self.addCleanup(turret.cleanup)
        self.assertEqual(await turret.wait_exit(timeout=60.0), 0, turret.output)
        summary: dict[str, Any] = json.loads((folder / "summary.json").read_text())
        rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        return summary, turret.output, rows

    def check(self, summary: dict[str, Any], output: str, rows: list[dict[str, Any]]) -> int:
        """
        What both runs show: the negative values are counted, out of the
        "clock" figures (its min and max are the 5 ms of the valid ones,
        its count the rest), said in the text; "wait", always right, has
        every value and no fault; the results file keeps each value as
        the script gave it. Returns how many were negative.
        """
        transactions = summary["transactions"]
        self.assertGreater(transactions, 10)
        self.assertEqual(len(rows), transactions)
        negative = summary["invalid_timer_values"]["clock"]["negative"]
        self.assertEqual(summary["invalid_timer_values"], {"clock": {"negative": negative}})
        self.assertEqual(sum(1 for row in rows if row["custom_timers"]["clock"] == -0.5), negative)
        self.assertGreater(negative, 0)
        clock = summary["custom_timers"]["clock"]
        self.assertEqual(clock["count"] + negative, transactions)
        self.assertAlmostEqual(clock["min"], 0.005, places=5)
        self.assertAlmostEqual(clock["max"], 0.005, places=5)
        self.assertEqual(summary["custom_timers"]["wait"]["count"], transactions)
        self.assertEqual(summary["timer_values_over_one_hour"], {})
        self.assertIn(f'timer "clock": {negative:,} invalid values (negative: {negative:,}), '
                      "not in its figures", output)
        self.assertNotIn('timer "wait"', output)
        return negative

    async def test_negative_timer_end_to_end(self) -> None:
        """
        One process: the counts above (every third transaction negative,
        give or take those the stop cut), and the log warns once.
        """
        summary, output, rows = await self.run_turret()
        negative = self.check(summary, output, rows)
        third = summary["transactions"] // 3
        self.assertTrue(third - 2 <= negative <= third + 2, (negative, summary["transactions"]))
        self.assertEqual(output.count("Custom timer 'clock' got the value -0.5"), 1, output)

    async def test_negative_timer_two_processes(self) -> None:
        """
        ``--processes 2``: the counts travel from the workers in their
        parts; the summary says the same as one process would (the
        counts match the results file of both workers), and each worker
        that saw one warns once.
        """
        summary, output, rows = await self.run_turret("--processes", "2")
        self.assertEqual(summary["processes"], 2)
        self.check(summary, output, rows)
        warned = output.count("Custom timer 'clock' got the value -0.5")
        self.assertTrue(1 <= warned <= 2, output)
