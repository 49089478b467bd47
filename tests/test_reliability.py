"""
Reliability: backpressure instead of lost results, a blocked reactor is
noticed, and a second signal ends a slow shutdown at once.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted import Transaction
from octtwisted.clocks import Clocks
from octtwisted.config import load_config
from octtwisted.steps import ReactorStepCaller
from octtwisted.testing import FakeOrderSource, RecordingSink
from octtwisted.turret import TurretService
from octtwisted.watchdog import ReactorWatchdog
from tests.helpers import TurretProcess, write_config


class SlowSink(RecordingSink):
    """
    A sink whose transport takes results only when told to (``drain``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue: list[Any] = []
        self.waiters: list[tuple[int, Deferred[None]]] = []

    def send_result(self, result: Any) -> None:
        self.queue.append(result)

    def pending(self) -> int:
        return len(self.queue)

    def wait_for_room(self, below: int) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.waiters.append((below, d))
        return d

    def drain(self, count: int) -> None:
        for result in self.queue[:count]:
            super().send_result(result)
        del self.queue[:count]
        for below, d in list(self.waiters):
            if len(self.queue) < below:
                self.waiters.remove((below, d))
                d.callback(None)


class BackpressureTests(SynchronousTestCase):
    def test_cannons_pause_and_resume(self) -> None:
        """
        When max_pending_results results wait, the cannons hold back (no
        result is made or dropped); when the queue is down to half they
        resume, and every result made is delivered.
        """
        clock = Clock()
        sink = SlowSink()
        orders = FakeOrderSource()

        class Quick(Transaction):
            def run(self) -> Deferred[None]:
                return deferLater(clock, 0.1, lambda: None)

        path = write_config(Path(self.mktemp()), cannons=2, max_pending_results=6)
        turret = TurretService(
            config=load_config(path), uuid="u", transaction_class=Quick,
            steps=ReactorStepCaller(), orders=orders, sink=sink,
            clocks=Clocks.fake(clock), exit=lambda code: None,
        )
        turret.startService()
        orders.order("start", "open fire")
        clock.pump([0.1] * 20)
        self.assertEqual(len(sink.queue), 6)
        self.assertEqual(turret.results, 6)
        sink.drain(2)
        clock.pump([0.1] * 5)
        self.assertEqual(turret.results, 6, "resumed before the queue was down to half")
        sink.drain(2)
        clock.pump([0.1] * 2)
        self.assertGreater(turret.results, 6)
        stopping = turret.cease_fire()
        clock.pump([0.1] * 3)
        self.successResultOf(stopping)
        sink.drain(len(sink.queue))
        self.assertEqual(len(sink.results), turret.results)
        self.assertEqual(sink.dropped, 0)


class WatchdogTests(SynchronousTestCase):
    def test_blocked_reactor_logged(self) -> None:
        """
        A tick that comes 2 s late logs how long the reactor was blocked;
        on-time ticks log nothing.
        """
        clock = Clock()
        now = [0.0]
        events: list[dict[str, Any]] = []
        dog = ReactorWatchdog(clock, lambda: now[0], interval=0.1, threshold=0.5)
        dog.log = Logger(observer=events.append)
        dog.startService()
        for _ in range(10):
            now[0] += 0.1
            clock.advance(0.1)
        self.assertEqual(events, [])
        now[0] += 2.1
        clock.advance(2.1)
        self.assertEqual(len(events), 1)
        self.assertAlmostEqual(events[0]["blocked"], 2.1)
        dog.stopService()


class ProcessReliabilityTests(TestCase):
    timeout = 60

    def launch(self, *args: str, **keys: Any) -> TurretProcess:
        folder = Path(self.mktemp()).absolute()
        keys = {"hq_address": None, "hq_publisher": None, "hq_rc": None, "cannons": 1, **keys}
        config = write_config(folder, **keys)
        turret = TurretProcess(["-c", str(config), "--standalone", *args], cwd=folder)
        self.addCleanup(turret.cleanup)
        return turret

    async def wait_output(self, turret: TurretProcess, text: str) -> None:
        while text not in turret.output:
            if not turret.running:
                self.fail(f"turret ended before {text!r}:\n{turret.output}")
            await deferLater(reactor, 0.05, lambda: None)

    async def test_blocked_reactor_reported(self) -> None:
        """
        A script that blocks the reactor for 1 s is reported as such, and
        the run goes on.
        """
        turret = self.launch("--duration", "1.5", script="blocks_reactor.py", block=1.0)
        await turret.wait_exit()
        self.assertIn("the reactor was blocked for 1.", turret.output)

    async def test_second_sigterm_exits_at_once(self) -> None:
        """
        While a graceful stop waits for a hung transaction (stop timeout
        30 s), a second SIGTERM ends the process at once.
        """
        turret = self.launch(script="hangs.py", stop_timeout=30)
        await self.wait_output(turret, "open fire")
        turret.signal(signal.SIGTERM)
        await self.wait_output(turret, "running -> stopping")
        turret.signal(signal.SIGTERM)
        code = await turret.wait_exit(timeout=5)
        self.assertEqual(code, 128 + signal.SIGTERM)
        self.assertIn("exiting now", turret.output)
