"""
RunOutputs, the turret's hook for thresholds, the report, the results file
and the live line; the report's settings of each load model; an open-model
run through the real schedule to its report; and the live line's text.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.clocks import Clocks
from octtwisted._core.config import load_config
from octtwisted._firing.runkeeper import local_runs
from octtwisted._firing.steps import ReactorCannonFactory
from octtwisted._firing.turret import TurretService
from octtwisted._stats.live import LiveStatus, status_text
from octtwisted._stats.outputs import OutputSettings, RunOutputs, run_path
from octtwisted._stats.summary import RunStats
from octtwisted._stats.timeline import Tick
from octtwisted.testing import FakeOrderSource, RecordingSink
from tests.helpers import write_config
from tests.test_load import waiting
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
        return RunOutputs(config=self.config, settings=OutputSettings(version="9.8.7", **settings),
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
        self.assertEqual(settings_of(page)["oct-twisted"], "9.8.7", "the version given")

    def test_results_from_frames(self) -> None:
        """
        With ``results_from_frames`` the results file takes the batches
        given to ``frames_sent`` while a run is under way (those before
        and after it go nowhere), not the results: ``on_result`` stays
        None, and ``copies_frames`` says to plug a sender in.
        """
        self.assertFalse(self.outputs(results_from_frames=True).copies_frames, "no --results")
        outputs = self.outputs(results=self.folder / "r.jsonl", results_from_frames=True)
        self.assertTrue(outputs.copies_frames)
        frame = b'{"turret_name":"t","epoch":1.0,"elapsed":0.5,"scriptrun_time":0.1,' \
                b'"error":"","custom_timers":{}}'
        outputs.frames_sent([frame])  # before the run
        outputs.run_started(RunStats(), lambda: 2)
        self.assertIsNone(outputs.on_result)
        outputs.frames_sent([frame, frame])
        outputs.frames_sent([frame])
        outputs.run_ended(RunStats().summary(duration=1.0, cannons=2, cannons_reached=2))
        outputs.frames_sent([frame])  # after it
        self.successResultOf(outputs.idle())
        self.assertEqual((self.folder / "r.jsonl").read_bytes(), (frame + b"\n") * 3)

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


def settings_of(page: str) -> dict[str, str]:
    """
    The rows of a report's settings table.
    """
    table = page[page.index('<section id="settings">'):]
    table = table[:table.index("</table>")]
    return dict(re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table))


class LoadSettingsTests(SynchronousTestCase):
    def report(self, **keys: Any) -> str:
        folder = Path(self.mktemp()).absolute()
        config = load_config(write_config(folder, hq_address=None, hq_publisher=None,
                                          hq_rc=None, **keys), standalone=True)
        outputs = RunOutputs(config=config, settings=OutputSettings(version="1", report=folder / "r.html"),
                             clock=Clock(), turret_id="id-1", run_in_thread=now)
        stats = RunStats()
        outputs.run_started(stats, lambda: 1)
        outputs.run_ended(stats.summary(duration=1.0, cannons=2, cannons_reached=2))
        return (folder / "r.html").read_text()

    def test_closed_model(self) -> None:
        """
        The classic closed model shows its cannons and rampup, and no
        arrival rate nor stages.
        """
        rows = settings_of(self.report(cannons=4, rampup=2))
        self.assertEqual(rows["Load model"], "closed")
        self.assertEqual(rows["Cannons"], "4")
        self.assertEqual(rows["Rampup"], "2 s")
        self.assertNotIn("Arrival rate", rows)
        self.assertNotIn("Stages", rows)

    def test_closed_stages(self) -> None:
        """
        Closed-model stages are listed in cannons, and the rampup is said
        to be unused.
        """
        rows = settings_of(self.report(cannons=10, stages=[{"duration": 5, "target": 10},
                                                           {"duration": 2.5, "target": 3}]))
        self.assertEqual(rows["Load model"], "closed (stages of active cannons)")
        self.assertEqual(rows["Stages"], "5 s to 10 cannons; 2.5 s to 3 cannons")
        self.assertEqual(rows["Rampup"], "not used (stages)")
        self.assertNotIn("Arrival rate", rows)

    def test_open_model(self) -> None:
        """
        The open model shows the arrival rate, the cannons as the most in
        flight, and the ramp; with stages, the rate is where they start and
        the stages are rates (past 12, the rest are counted).
        """
        rows = settings_of(self.report(cannons=20, rampup=3, arrival_rate=1500))
        self.assertEqual(rows["Load model"], "open (arrival rate)")
        self.assertEqual(rows["Arrival rate"], "1,500 transactions/s")
        self.assertEqual(rows["Cannons"], "20 (the most transactions in flight)")
        self.assertEqual(rows["Rampup"], "3 s (ramps the rate from 0)")
        stages = [{"duration": 1, "target": 10 * n} for n in range(1, 15)]
        rows = settings_of(self.report(cannons=20, arrival_rate=5, stages=stages))
        self.assertEqual(rows["Arrival rate"], "5 transactions/s at the start, then the stages")
        self.assertTrue(rows["Stages"].startswith("1 s to 10/s; 1 s to 20/s; "), rows["Stages"])
        self.assertTrue(rows["Stages"].endswith("1 s to 120/s; and 2 more"), rows["Stages"])


class OpenModelReportTests(SynchronousTestCase):
    def test_dropped_starts_in_the_report(self) -> None:
        """
        An open-model run through the real schedule (task.Clock, 100
        starts/s of 0.5 s transactions on 10 cannons, so most are dropped)
        writes a report whose start charts' data add up to the summary's
        planned, started and dropped starts, each second's in its point.
        """
        clock = Clock()
        folder = Path(self.mktemp()).absolute()
        config = load_config(write_config(folder, hq_address=None, hq_publisher=None, hq_rc=None,
                                          cannons=10, arrival_rate=100), standalone=True)
        outputs = RunOutputs(config=config, settings=OutputSettings(version="1", report=folder / "r.html"),
                             clock=clock, turret_id="id-1", run_in_thread=now)
        orders = FakeOrderSource()
        sink = RecordingSink()
        make_run = local_runs(config=config, transaction_class=waiting(clock, 0.5),
                              steps=ReactorCannonFactory(), clocks=Clocks.fake(clock), sink=sink,
                              outputs=outputs)
        turret = TurretService(config=config, uuid="id-1", make_run=make_run, orders=orders,
                               sink=sink, clocks=Clocks.fake(clock), exit=lambda code: None)
        turret.startService()
        orders.order("start", "open fire")
        clock.pump([0.01] * 300)
        orders.order("stop", None)
        clock.pump([0.01] * 100)
        summary = turret.last_summary
        assert summary is not None and summary.starts is not None
        page = (folder / "r.html").read_text()
        found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
        assert found is not None
        starts = json.loads(found[1])["starts"]
        self.assertGreater(summary.starts.dropped, 150)
        self.assertEqual(sum(starts["dropped"]), summary.starts.dropped)
        self.assertEqual(sum(starts["planned"]), summary.starts.planned)
        self.assertEqual(sum(starts["started"]), summary.starts.started)
        # Each second: 100 planned, 10 cannons start 2 each (0.5 s apiece).
        self.assertEqual(starts["planned"][:3], [100, 100, 100])
        self.assertEqual(starts["started"][:3], [20, 20, 20])
        self.assertEqual(starts["dropped"][:3], [80, 80, 80])
        self.assertIn("Starts per second", page)


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

    def test_text_open_model(self) -> None:
        """
        In the open model the line also counts the dropped starts.
        """
        tick = Tick(elapsed=2.0, transactions_per_second=100.0, p95=0.5, transactions=200,
                    errors=0, active=20, dropped_starts=1234)
        self.assertEqual(status_text(tick, 10.0, 20),
                         "2.0/10 s  100.0 tx/s  p95 500.0 ms  errors 0 (0.00%)  20/20 cannons  "
                         "1,234 starts dropped")

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
