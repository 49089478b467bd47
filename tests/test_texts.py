"""
What a run says of itself (issue 24, items 1, 2 and 4): misspelled config
keys and threshold metrics are named, the open model's dropped load can
fail a threshold and is said plainly, and the summary tells the firing
time from the time the stop waited for transactions in flight.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from octtwisted import Transaction
from octtwisted._core.checker import ConfigError
from octtwisted._core.config import load_config
from octtwisted._core.spelling import distance, meant
from octtwisted._core.thresholds import evaluate, parse_thresholds
from octtwisted._firing.lifecycle import State
from octtwisted._firing.stopping import BoundedStop
from octtwisted._stats.live import status_text
from octtwisted._stats.outputs import OutputSettings, RunOutputs
from octtwisted._stats.progress import ProgressReporter
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import RunStats
from octtwisted._stats.table import format_table, undelivered_load
from octtwisted._stats.timeline import Tick
from octtwisted.testing import make_turret
from tests.helpers import TurretTestCase, write_config
from tests.test_summary import result

NO_HQ = {"hq_address": None, "hq_publisher": None, "hq_rc": None}


def config_of(test: SynchronousTestCase, **keys: Any) -> Any:
    return load_config(write_config(Path(test.mktemp()), **{**NO_HQ, **keys}), standalone=True)


class MisspelledKeyTests(SynchronousTestCase):
    def test_distance(self) -> None:
        """
        The edit distance counts insertions, deletions, substitutions and
        a transposition of neighbours as one edit each.
        """
        self.assertEqual(distance("arival_rate", "arrival_rate"), 1)
        self.assertEqual(distance("pacnig", "pacing"), 1)
        self.assertEqual(distance("cannon", "cannons"), 1)
        self.assertEqual(distance("kitten", "sitting"), 3)
        self.assertEqual(distance("", "abc"), 3)

    def test_meant(self) -> None:
        """
        A word one or two edits from a known one means it (one edit for
        short words); a known word, and a far one, mean nothing.
        """
        self.assertEqual(meant("Pacing", ["pacing"]), "pacing")
        self.assertEqual(meant("transaction_timout", ["transaction_timeout"]), "transaction_timeout")
        self.assertIsNone(meant("pacing", ["pacing"]))
        self.assertEqual(meant("nmae", ["name", "cannons"]), "name")
        self.assertIsNone(meant("target_url", ["stop_timeout", "pacing"]))
        self.assertIsNone(meant("hmae", ["name"]))  # two edits from a short word

    def test_one_warning_per_near_miss(self) -> None:
        """
        ``arival_rate``, ``pacng`` and ``transaction_timout`` are allowed
        (a script may have its own keys) but each gets one warning naming
        the key it looks like; a script's own key far from every turret key
        gets none.
        """
        config = config_of(
            self, arival_rate=50, pacng=1, transaction_timout=3, target_url="http://x/"
        )
        self.assertIsNone(config.arrival_rate)
        found = [w.split(": ", 1)[1] for w in config.warnings]
        self.assertEqual(found, [
            "unknown key 'arival_rate': did you mean 'arrival_rate'?",
            "unknown key 'pacng': did you mean 'pacing'?",
            "unknown key 'transaction_timout': did you mean 'transaction_timeout'?",
        ])

    def test_every_key_read_is_known(self) -> None:
        """
        A config that spells every key of the turret right, ``processes``
        included, gets no warning.
        """
        config = config_of(self, processes=1, stop_timeout=5, pacing=0, progress_interval=1,
                           blocking=None, tls_verify=True, linger=1, heartbeat_interval=1,
                           max_pending_results=10, hq_lost_timeout=1, hq_silence_timeout=1,
                           thresholds={"errors": "rate < 0.1"})
        self.assertEqual(config.warnings, ())

    def test_missing_required_key_names_the_near_miss(self) -> None:
        """
        ``cannon`` for ``cannons``: the error for the missing key says
        which key looks like it.
        """
        path = write_config(Path(self.mktemp()), **NO_HQ, cannons=None, cannon=3)
        with self.assertRaises(ConfigError) as caught:
            load_config(path, standalone=True)
        self.assertIn(
            "missing required key 'cannons' (is 'cannon' a misspelling of it?)", str(caught.exception)
        )

    def test_threshold_metric_near_miss(self) -> None:
        """
        A threshold metric close to a metric of the turret is taken as a
        timer's name, with a warning at start naming both.
        """
        config = config_of(self, thresholds={"scriptrun_tme": "p95 < 1", "login": "p95 < 1"})
        self.assertEqual(len(config.warnings), 1)
        self.assertIn(
            "threshold metric 'scriptrun_tme': did you mean 'scriptrun_time'?", config.warnings[0]
        )

    def test_open_model_metric_without_arrival_rate(self) -> None:
        """
        A threshold on ``dropped_starts`` or ``start_lag`` in a closed-model
        config is a config error at start, in one line.
        """
        for metric in ("dropped_starts", "start_lag"):
            path = write_config(Path(self.mktemp()), **NO_HQ, thresholds={metric: "count < 1"})
            with self.assertRaises(ConfigError) as caught:
                load_config(path, standalone=True)
            self.assertIn(f"{metric!r} is a metric of the open model", str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))

    def test_warnings_in_report_settings(self) -> None:
        """
        The config's warnings are a row of the report's settings.
        """
        config = config_of(self, pacng=1)
        outputs = RunOutputs(config=config, settings=OutputSettings(version="1"),
                             clock=Clock(), turret_id="t")
        stats = RunStats()
        outputs.run_started(stats, lambda: 1)
        rows = dict(outputs._settings_rows(stats.summary(duration=1, cannons=1, cannons_reached=1)))
        self.assertIn("unknown key 'pacng': did you mean 'pacing'?", rows["Config warnings"])


class OpenModelThresholdTests(SynchronousTestCase):
    def starts(self, planned: int, dropped: int) -> StartStats:
        starts = StartStats()
        for _ in range(planned):
            starts.plan()
        for i in range(planned - dropped):
            starts.start(0.001 * (i + 1))
        starts.drop(dropped)
        return starts

    def test_dropped_starts_and_start_lag(self) -> None:
        """
        ``dropped_starts`` has ``count`` and ``rate`` (dropped / planned),
        ``start_lag`` a timer's statistics over the starts' lags.
        """
        thresholds = parse_thresholds({
            "dropped_starts": ["count < 10", "rate < 0.01"],
            "start_lag": ["p99 < 60ms", "max < 10ms"],
        })
        outcomes = evaluate(thresholds, RunStats(), transactions=53, errors=0, duration=1.0,
                            starts=self.starts(100, 47))
        self.assertEqual([o.passed for o in outcomes], [False, False, True, False])
        self.assertEqual(outcomes[0].value, 47.0)
        self.assertAlmostEqual(outcomes[1].value or 0, 0.47)
        self.assertAlmostEqual(outcomes[3].value or 0, 0.053, delta=0.0001)

    def test_unknown_statistic_of_dropped_starts(self) -> None:
        """``dropped_starts`` is a count: a percentile of it is refused."""
        from octtwisted._core.thresholds import ThresholdError

        with self.assertRaises(ThresholdError):
            parse_thresholds({"dropped_starts": "p95 < 1"})

    def test_timer_never_seen(self) -> None:
        """
        A threshold on a timer the run never saw fails, and its outcome,
        and the table, name the timers that were seen.
        """
        stats = RunStats()
        stats.record(result(custom_timers={"home": 0.1, "login": 0.2}))
        outcomes = evaluate(parse_thresholds({"hom": "p95 < 1"}), stats,
                            transactions=1, errors=0, duration=1.0)
        self.assertFalse(outcomes[0].passed)
        self.assertEqual(outcomes[0].note, "no timer named 'hom'; timers seen: home, login")
        summary = stats.summary(duration=1, cannons=1, cannons_reached=1)
        import attrs

        table = format_table(attrs.evolve(summary, thresholds=outcomes))
        self.assertIn("no timer named 'hom'; timers seen: home, login", table)

    def test_undelivered_load_line(self) -> None:
        """
        More than 1% of the planned starts dropped: the summary says
        plainly that the planned load was not delivered; 1% or less, it
        says nothing.
        """
        stats = RunStats()
        summary = stats.summary(duration=1, cannons=1, cannons_reached=1,
                                starts=self.starts(1000, 470).figures())
        line = undelivered_load(summary)
        assert line is not None
        self.assertTrue(line.startswith(
            "The turret could not deliver the planned load: 470 of 1,000 planned starts "
            "(47.0%) were dropped: no cannon was idle. Raise cannons"
        ), line)
        self.assertIn(line, format_table(summary))
        fine = stats.summary(duration=1, cannons=1, cannons_reached=1,
                             starts=self.starts(1000, 10).figures())
        self.assertIsNone(undelivered_load(fine))


class StopWaitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)

    def test_firing_and_waiting_apart(self) -> None:
        """
        Two hanging transactions, stopped after 3 s with a 10 s stop
        timeout: the summary gives 3 s of firing and 10 s of waiting for 2
        transactions in flight (cancelled at the stop timeout), a rate
        per firing second, and the rows that say so; a log line says what
        the stop waits for when it begins.
        """
        clock = self.clock

        class Hangs(Transaction):
            def run(self) -> Deferred[None]:
                return Deferred()

        made = make_turret(Hangs, clock=clock, config=config_of(self, cannons=2, stop_timeout=10))
        turret = made.turret
        events: list[dict[str, Any]] = []
        self.patch(BoundedStop, "log", Logger(observer=events.append))
        turret.start_firing()
        clock.advance(3)
        turret.cease_fire()
        self.assertEqual(
            [e["in_flight"] for e in events if "waiting up to" in e["log_format"]], [2]
        )
        clock.advance(10)
        clock.advance(1)
        self.assertIs(turret.state, State.READY)
        summary = turret.last_summary
        assert summary is not None
        self.assertAlmostEqual(summary.firing_time, 3.0)
        self.assertAlmostEqual(summary.stop_wait, 10.0)
        self.assertAlmostEqual(summary.duration, 13.0)
        self.assertEqual(summary.in_flight_at_stop, 2)
        self.assertAlmostEqual(summary.transactions_per_second, 2 / 3.0)
        table = format_table(summary)
        self.assertIn("Firing           3.0 s", table)
        self.assertIn("Stop wait        10.0 s for 2 transactions in flight at the stop", table)
        data = json.loads(summary.to_json())
        self.assertEqual((data["firing_time"], data["in_flight_at_stop"]), (3.0, 2))

    def test_progress_says_in_flight(self) -> None:
        """
        The closed model's progress line counts the transactions in flight;
        once the stop began, it says it waits for them.
        """
        events: list[dict[str, Any]] = []
        stats = RunStats()
        reporter = ProgressReporter(self.clock, 5.0, target=5, active=lambda: 5,
                                    take_interval=stats.take_interval, in_flight=lambda: 5)
        reporter.log = Logger(observer=events.append)
        reporter.start()
        self.clock.advance(5)
        reporter.stopping()
        self.clock.advance(5)
        reporter.stop()
        from twisted.logger import formatEvent

        lines = [formatEvent(e) for e in events]
        self.assertTrue(lines[0].startswith("progress: 5/5 cannons, 5 in flight, 0.0 tx/s"), lines[0])
        self.assertTrue(
            lines[1].startswith("progress: stopping, waiting for 5 transactions in flight"), lines[1]
        )
        self.assertEqual(events[1]["in_flight"], 5)

    def test_live_line_in_flight(self) -> None:
        """The live line says the transactions in flight, and when the stop waits for them."""
        tick = Tick(elapsed=3.0, transactions_per_second=0.0, p95=None, errors=0,
                    transactions=0, active=5)
        self.assertEqual(status_text(tick, 3.0, 5, 5),
                         "3.0/3 s  0.0 tx/s  p95 -  errors 0  5/5 cannons  5 in flight")
        self.assertTrue(status_text(tick, 3.0, 5, 5, stopping=True).endswith("stopping: 5 in flight"))


class TextsEndToEnd(TurretTestCase):
    timeout = 60

    async def test_hanging_target_says_what_it_waits_for(self) -> None:
        """
        ``--duration 1`` against a script that hangs, with a 1 s stop
        timeout and a misspelled ``pacng``: the log says the stop waits for
        the 3 transactions in flight; the summary gives about 1 s of firing
        and 1 s of waiting (the stop timeout) apart, in the table and the
        JSON; the misspelling is warned of in the log and after the table.
        """
        turret = self.launch("hangs.py", standalone=True, cannons=3, rampup=0, stop_timeout=1,
                             pacng=1, args=("--duration", "1", "--summary-json", "s.json"))
        code = await turret.wait_exit(timeout=30)
        self.assertEqual(code, 1, turret.output)  # every transaction was cancelled
        out = turret.output
        self.assertIn("waiting up to 1 s for 3 transactions in flight", out)
        self.assertIn("for 3 transactions in flight at the stop", out)
        self.assertIn("unknown key 'pacng': did you mean 'pacing'?", out)
        self.assertIn("Config warnings:", out)
        summary = json.loads((turret.folder / "s.json").read_text())
        self.assertTrue(0.9 < summary["firing_time"] < 1.5, summary)
        self.assertTrue(0.9 < summary["stop_wait"] < 1.6, summary)
        self.assertEqual(summary["in_flight_at_stop"], 3)
        self.assertAlmostEqual(summary["duration"], summary["firing_time"] + summary["stop_wait"])

    async def test_dropped_load_fails_its_threshold(self) -> None:
        """
        An open-model run that drops most of its starts (2 cannons, 0.5 s
        transactions, 50/s) says plainly that it could not deliver the
        planned load, and a ``dropped_starts`` threshold fails it (exit 99).
        """
        turret = self.launch("slow.py", standalone=True, cannons=2, arrival_rate=50, rampup=0,
                             thresholds={"dropped_starts": ["rate < 0.01"], "start_lag": "p99 < 1s"},
                             args=("--duration", "1.5"))
        code = await turret.wait_exit(timeout=30)
        self.assertEqual(code, 99, turret.output)
        self.assertIn("The turret could not deliver the planned load", turret.output)
        self.assertIn("FAIL  dropped_starts", turret.output)
