"""
Standalone runs, live progress and ``make demo``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core.messages import Result
from octtwisted._stats.progress import ProgressReporter
from octtwisted._stats.summary import RunStats
from tests.helpers import TurretProcess, write_config

ROOT = Path(__file__).resolve().parent.parent


class StandaloneProcessTests(TestCase):
    timeout = 60

    def launch(self, *args: str, script: str = "deferred_sleep.py", **keys: Any) -> tuple[TurretProcess, Path]:
        folder = Path(self.mktemp()).absolute()
        keys = {"hq_address": None, "hq_publisher": None, "hq_rc": None, "cannons": 4, "rampup": 0.2, **keys}
        config = write_config(folder, script=script, **keys)
        turret = TurretProcess(["-c", str(config), "--standalone", *args], cwd=folder)
        self.addCleanup(turret.cleanup)
        return turret, folder

    async def test_runs_for_duration(self) -> None:
        """
        With no hq_* keys, the turret fires for the duration, prints the
        summary table, writes the JSON summary and exits 0.
        """
        turret, folder = self.launch("--duration", "1.5", "--summary-json", "summary.json", progress_interval=0.5)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        self.assertIn("Run summary", turret.output)
        self.assertIn("progress: ", turret.output)
        summary = json.loads((folder / "summary.json").read_text())
        self.assertGreater(summary["transactions"], 100)
        self.assertEqual(summary["errors"], 0)
        self.assertEqual(summary["cannons"], 4)
        self.assertEqual(summary["cannons_reached"], 4)
        self.assertTrue(1.4 < summary["duration"] < 2.5, summary["duration"])
        self.assertGreater(summary["scriptrun_time"]["p50"], 0.009)
        self.assertIn("wait", summary["custom_timers"])

    async def test_all_failed_exits_one(self) -> None:
        """
        When every transaction failed, the exit status is 1 and the summary
        names the error.
        """
        turret, _ = self.launch("--duration", "0.5", script="always_fails.py")
        self.assertEqual(await turret.wait_exit(), 1, turret.output)
        self.assertIn("ConnectionRefusedError: target is down", turret.output)

    async def test_sigint_ends_run(self) -> None:
        """
        Without a duration the run goes on until SIGINT, which stops it as
        an HQ ``stop`` would: summary printed, exit 0.
        """
        turret, folder = self.launch("--summary-json", "s.json")
        await turret.wait_output("open fire")
        turret.signal(signal.SIGINT)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        self.assertIn("Run summary", turret.output)
        self.assertTrue((folder / "s.json").exists())

    async def test_demo(self) -> None:
        """
        A shortened ``make demo`` runs a real local load test, shows
        progress and the summary, exits 0, and leaves no target running.
        """
        env = dict(os.environ, DEMO_DURATION="3", VENV=sys.prefix)
        out, err, code = await getProcessOutputAndValue(
            "make", ["-s", "-C", str(ROOT), "demo"], env=env
        )
        text = out.decode() + err.decode()
        self.assertEqual(code, 0, text)
        self.assertIn("progress: ", text)
        self.assertIn("Run summary", text)
        self.assertIn("Errors: none", text)
        url = text.split("demo: target ")[1].split(";")[0]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        with socket.socket() as probe:
            self.assertNotEqual(probe.connect_ex(("127.0.0.1", port)), 0, "target still running")


class StartTests(SynchronousTestCase):
    def run_of(self, clock: Clock) -> tuple[Any, Any, list[Any], list[int]]:
        from octtwisted import Transaction
        from octtwisted._edge.standalone import StandaloneRun
        from octtwisted.testing import make_turret

        made = make_turret(Transaction, clock=clock, cannons=2)
        when_running: list[Any] = []
        exits: list[int] = []
        run = StandaloneRun(
            turret=made.turret,
            clock=clock,
            when_running=when_running.append,
            duration=5,
            exit=exits.append,
            out=open(os.devnull, "w"),
        )
        self.addCleanup(run._out.close)
        return run, made.turret, when_running, exits

    def test_fires_once_the_reactor_runs(self) -> None:
        """
        twistd starts the services before the reactor runs (and installs
        its signal handlers): a standalone run opens fire only once the
        reactor runs, so a SIGTERM that follows "open fire" always finds
        the turret's handler, and the duration counts from then.
        """
        from octtwisted._firing.lifecycle import State

        clock = Clock()
        run, turret, when_running, exits = self.run_of(clock)
        run.startService()
        clock.advance(10)
        self.assertIs(turret.state, State.READY)
        self.assertEqual(exits, [])
        [open_fire] = when_running
        open_fire()
        self.assertIs(turret.state, State.RUNNING)
        clock.advance(5)
        self.assertIs(turret.state, State.READY)

    def test_stopped_before_the_reactor_runs(self) -> None:
        """
        A run stopped before the reactor ran never opens fire.
        """
        from octtwisted._firing.lifecycle import State

        clock = Clock()
        run, turret, when_running, exits = self.run_of(clock)
        run.startService()
        run.stopService()
        when_running[0]()
        clock.advance(10)
        self.assertIs(turret.state, State.READY)
        self.assertEqual(turret.results, 0)


class ProgressTests(SynchronousTestCase):
    def test_lines_every_interval(self) -> None:
        """
        Every interval, one event with active/target cannons, tx/s, errors,
        p50 and p95 of that interval, as named fields.
        """
        clock = Clock()
        events: list[dict[str, Any]] = []
        stats = RunStats()
        reporter = ProgressReporter(clock, 5.0, target=10, active=lambda: 7, take_interval=stats.take_interval)
        reporter.log = Logger(observer=events.append)
        reporter.start()
        for i in range(100):
            stats.record(Result("t", 0, 0, 0.010 if i < 50 else 0.030, "oops" if i % 10 == 0 else ""))
        clock.advance(4.9)
        self.assertEqual(events, [])
        clock.advance(0.1)
        self.assertEqual(len(events), 1)
        event = events[0]
        self.assertEqual((event["active"], event["target"]), (7, 10))
        self.assertAlmostEqual(event["tps"], 20.0)
        self.assertEqual(event["errors"], 10)
        self.assertTrue(abs(event["p50"] - 0.010) < 0.0001, event["p50"])
        self.assertTrue(abs(event["p95"] - 0.030) < 0.0003, event["p95"])
        clock.advance(5)
        self.assertEqual(events[1]["transactions"], 0)
        reporter.stop()
        clock.advance(50)
        self.assertEqual(len(events), 2)

    def test_off(self) -> None:
        """
        An interval of 0 turns progress off.
        """
        clock = Clock()
        reporter = ProgressReporter(clock, 0, target=1, active=lambda: 1, take_interval=RunStats().take_interval)
        reporter.start()
        self.assertEqual(clock.getDelayedCalls(), [])
