"""
A blocking script's run with thousands of cannon threads, each in a
blocking call when the stop comes, ends the process promptly: within the
bound the config gives (stop timeout, cancel grace, linger, margin), with
the results counted, and without tearing the interpreter down after the
summary (see ``docs/lifecycle.rst``, "How long the end takes").

Counted means every transaction that ended: those a burst had finished
before a step that never returns are reported when the reactor claims that
step, not lost with the burst (unit tests, thread played by the test).
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.clocks import Clocks
from octtwisted._core.messages import Result
from octtwisted._edge.services import STOP_MARGIN
from octtwisted._firing.cannon import Cannon, CannonSettings
from octtwisted._firing.stopping import CANCEL_GRACE
from octtwisted._firing.threaded import threaded_cannon
from octtwisted._firing.threads import Mailbox
from tests.helpers import TurretProcess, TurretTestCase
from tests.test_threaded import FakeReactor, PlayedThread, Script

#: Cannons, each with its own thread: enough threads for the interpreter's
#: teardown to matter, few enough for a loaded 2-core machine.
CANNONS = 2000
STOP_TIMEOUT = 1.0
LINGER = 1.0
#: From the stop's start to a standalone process's end (docs/lifecycle.rst,
#: "How long the end takes") ...
BOUND = STOP_TIMEOUT + CANCEL_GRACE + LINGER + STOP_MARGIN
#: ... and with an HQ (ZeroMQ's linger as the sockets close).
BOUND_WITH_HQ = BOUND + LINGER

SCRIPT = "classic_blocked.py"
KEYS = {"cannons": CANNONS, "rampup": 0, "stop_timeout": STOP_TIMEOUT, "linger": LINGER}


def in_flight_at_stop(output: str) -> int:
    """The transactions the stop waited for, from the turret's log."""
    found = re.search(r"waiting up to \S+ s for (\d+) transactions? in flight", output)
    assert found is not None, output
    return int(found.group(1))


class ThreadedExitTests(TurretTestCase):
    timeout = 120

    async def ended_within(self, bound: float, turret: TurretProcess, began: float) -> int | None:
        """
        The process ends within ``bound`` seconds of ``began`` (the stop's
        start, in the reactor's time); its exit status.
        """
        code = await turret.wait_exit(timeout=bound + 30)
        took = reactor.seconds() - began
        self.assertLessEqual(took, bound, f"the process took {took:.1f}s to end:\n{turret.output}")
        return code

    async def test_standalone_end_is_prompt(self) -> None:
        """
        A standalone run of 2,000 blocking cannons, every one in a
        blocking call at the end of the duration: the process exits 0
        within the stop timeout + cancel grace + linger + margin, the
        summary counts every transaction (the success and each one
        cancelled at the stop timeout), and the interpreter is not torn
        down after the summary (before the fix, it was, with the 2,000
        threads alive: seconds at 10,000 and 20,000 cannons).
        """
        turret = self.launch(SCRIPT, standalone=True, args=("--duration", "4", "--summary-json", "s.json"), **KEYS)
        await turret.wait_output(f"all {CANNONS} cannons firing", timeout=60)
        began = await turret.wait_output("duration of", timeout=60)
        code = await self.ended_within(BOUND, turret, began)
        self.assertEqual(code, 0, turret.output)
        in_flight = in_flight_at_stop(turret.output)
        self.assertGreater(in_flight, CANNONS // 2, turret.output)
        summary = json.loads((turret.folder / "s.json").read_text())
        self.assertEqual(summary["errors"], in_flight, turret.output)
        self.assertEqual(summary["transactions"], in_flight + 1, turret.output)
        self.assertIn("Run summary", turret.output)
        self.assertIn("turret stopped:", turret.output)
        self.assertNotIn("interpreter teardown", turret.output)

    async def test_sigterm_end_is_prompt(self) -> None:
        """
        With an HQ, SIGTERM while 2,000 blocking cannons are each in a
        blocking call: the process ends by the signal (a shell's 143)
        within the bound with an HQ (one linger more), after its final
        status and every result (the success and each cancelled one)
        reached the HQ.
        """
        hq = self.start_hq()
        turret = self.launch(SCRIPT, hq=hq, **KEYS)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await turret.wait_output(f"all {CANNONS} cannons firing", timeout=60)
        turret.signal(signal.SIGTERM)
        began = reactor.seconds()
        code = await self.ended_within(BOUND_WITH_HQ, turret, began)
        self.assertIsNone(code, turret.output)  # ended by the signal
        self.assertIn("turret stopped:", turret.output)
        self.assertNotIn("interpreter teardown", turret.output)
        await hq.wait_for_status("Killed", turret.uuid)
        reported = int(turret.output.split("turret stopped: ")[1].split(" results")[0])
        self.assertEqual(reported, in_flight_at_stop(turret.output) + 1, turret.output)
        await hq.wait_for_results(reported)
        self.assertEqual(len(hq.results), reported)


class QuickThenStuck(Script):
    """
    A transaction whose first run takes 1 ms and whose second calls
    ``during_second`` then takes ``takes`` seconds (the clock moves).
    """

    def __init__(self, clock: FakeReactor, takes: float) -> None:
        super().__init__(clock, takes=0.001)
        self.second_takes = takes
        self.during_second: Callable[[], None] | None = None

    def run(self) -> Any:
        if self.runs == 1:
            self.takes = self.second_takes
            self.during_run = self.during_second
        return super().run()


class FinishedInTheBurstTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.results: list[Result] = []

    def cannon(self, script: Script, **kwargs: Any) -> tuple[Cannon, PlayedThread]:
        worker = PlayedThread()
        settings = CannonSettings(
            index=0,
            turret_name="t",
            make_transaction=lambda: script,
            clocks=Clocks.fake(self.reactor),
            report=self.results.append,
            started_at=0.0,
            **kwargs,
        )
        return threaded_cannon(settings, worker, Mailbox(self.reactor)), worker

    def test_stop_timeout_reports_what_the_burst_finished(self) -> None:
        """
        A burst runs a quick transaction, then one whose step never returns;
        the stop timeout cancels that one: the quick one's result is
        reported too, at once (before the fix it stayed in the burst, which
        never came back, and the run lost it); the cannon counts both.
        """
        script = QuickThenStuck(self.reactor, takes=0.0)
        cannon, worker = self.cannon(script)
        cannon.start()
        stopped: list[Deferred[None]] = []

        def stuck() -> None:
            stopped.append(cannon.stop())
            cannon.cancel_in_flight("cancelled: still running at the stop timeout (1s)")

        script.during_second = stuck
        worker.run()
        self.successResultOf(stopped[0])
        self.assertEqual(
            [r.error for r in self.results], ["", "cancelled: still running at the stop timeout (1s)"]
        )
        self.assertAlmostEqual(self.results[0].scriptrun_time, 0.001)
        self.assertEqual(cannon.fired, 2)
        # The burst comes back after all: nothing counted twice.
        self.reactor.wake()
        self.assertEqual(len(self.results), 2)

    def test_transaction_timeout_reports_what_the_burst_finished(self) -> None:
        """
        transaction_timeout claims a run that goes on after a quick one in
        the same burst: the quick one is reported with the claim (not held
        back until the late run returns), and once the burst comes back,
        nothing is counted twice.
        """
        script = QuickThenStuck(self.reactor, takes=2.0)
        cannon, worker = self.cannon(script, transaction_timeout=0.5)
        cannon.start()
        seen: list[list[str]] = []
        script.during_second = lambda: seen.append([r.error for r in self.results])
        worker.run()
        self.assertEqual(seen, [[]])
        self.assertEqual([r.error for r in self.results], ["", "timeout after 0.5s"])
        self.reactor.wake()
        self.assertEqual([r.error for r in self.results], ["", "timeout after 0.5s"])
        self.assertEqual(cannon.fired, 2)
