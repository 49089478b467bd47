"""
RunOutputs, the turret's hook for thresholds, the report, the results file
and the live line; and the live line's text.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.config import load_config
from octtwisted._stats.live import LiveStatus, status_text
from octtwisted._stats.outputs import OutputSettings, RunOutputs, run_path
from octtwisted._stats.summary import RunStats
from octtwisted._stats.timeline import Tick
from tests.helpers import write_config
from tests.test_summary import result


def now(function: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return defer.maybeDeferred(function, *args)


class RunOutputsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = Path(self.mktemp()).absolute()
        self.clock = Clock()
        self.config = load_config(write_config(
            self.folder, hq_address=None, hq_publisher=None, hq_rc=None,
            thresholds={"errors": ["rate < 0.1"], "scriptrun_time": ["p99 < 0.05"]},
        ), standalone=True)

    def outputs(self, **settings: Any) -> RunOutputs:
        return RunOutputs(config=self.config, settings=OutputSettings(**settings),
                          clock=self.clock, turret_id="id-1", run_in_thread=now,
                          wall_clock=lambda: 1796139204.0)

    def run_once(self, outputs: RunOutputs, count: int = 20) -> Any:
        stats = RunStats()
        outputs.run_started(stats, lambda: 2)
        for i in range(count):
            r = result(0.01 if i else 0.2, error="boom" if i < 3 else "")
            stats.record(r)
            if outputs.on_result is not None:
                outputs.on_result(r)
        self.clock.advance(1.0)
        summary = stats.summary(duration=1.0, cannons=2, cannons_reached=2)
        return outputs.run_ended(summary)

    def test_thresholds_in_summary(self) -> None:
        """
        run_ended returns the summary with each threshold's outcome; with
        no file options nothing is written and no result hook is set.
        """
        outputs = self.outputs()
        self.assertIsNone(outputs.on_result)
        summary = self.run_once(outputs)
        self.assertEqual([(o.expression, o.passed) for o in summary.thresholds],
                         [("rate < 0.1", False), ("p99 < 0.05", False)])
        self.assertEqual(summary.thresholds[0].value, 0.15)
        self.assertEqual(outputs.written, [])

    def test_files_written(self) -> None:
        """
        With --report and --results, the run writes both at the given paths
        (standalone) and says so in ``written``; idle fires.
        """
        outputs = self.outputs(report=self.folder / "r.html", results=self.folder / "r.csv")
        self.run_once(outputs)
        self.successResultOf(outputs.idle())
        self.assertEqual(sorted(p.name for p in outputs.written), ["r.csv", "r.html"])
        self.assertEqual(len((self.folder / "r.csv").read_text().splitlines()), 21)
        page = (self.folder / "r.html").read_text()
        self.assertIn("plain.py", page)
        self.assertIn("boom", page)

    def test_per_run_names(self) -> None:
        """
        With an HQ, each run's files get the run's UTC start and number.
        """
        outputs = self.outputs(report=self.folder / "r.html", results=self.folder / "r.csv",
                               per_run_names=True, mode="HQ")
        self.run_once(outputs)
        self.run_once(outputs)
        names = sorted(p.name for p in self.folder.iterdir() if p.name.startswith("r-"))
        self.assertEqual(names, ["r-20261201T153324Z-1.csv", "r-20261201T153324Z-1.html",
                                 "r-20261201T153324Z-2.csv", "r-20261201T153324Z-2.html"])
        self.assertEqual(run_path(Path("/x/a.b.html"), 0.0, 3).name, "a.b-19700101T000000Z-3.html")


class LiveStatusTests(SynchronousTestCase):
    def test_text(self) -> None:
        """
        The line shows elapsed/duration, tx/s, p95, errors with their share,
        and cannons; a missing p95 and duration read as such.
        """
        tick = Tick(elapsed=12.04, transactions_per_second=1234.5, p95=0.0123,
                    transactions=1000, errors=3, active=50)
        self.assertEqual(status_text(tick, 30.0, 50),
                         "12.0/30 s  1,234.5 tx/s  p95 12.3 ms  errors 3 (0.30%)  50/50 cannons")
        quiet = Tick(elapsed=1.0, transactions_per_second=0.0, p95=None, transactions=0,
                     errors=0, active=0)
        self.assertEqual(status_text(quiet, None, 5), "1.0 s  0.0 tx/s  p95 -  errors 0  0/5 cannons")

    def test_rewrites_in_place(self) -> None:
        """
        Each update clears the line and returns to its start; close clears
        it once.
        """
        out = io.StringIO()
        live = LiveStatus(out, 10.0, 2)
        tick = Tick(elapsed=1.0, transactions_per_second=5.0, p95=0.001, transactions=5,
                    errors=0, active=2)
        live.update(tick)
        live.update(tick)
        live.close()
        live.close()
        text = out.getvalue()
        self.assertEqual(text.count("\x1b[2K"), 3)
        self.assertEqual(text.count("\n"), 0)
        self.assertTrue(text.endswith("\x1b[2K\r"))
