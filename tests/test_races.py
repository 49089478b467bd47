"""
Lifecycle races and per-run accounting (issue 12, items 1-5): a start
while stopping, backpressure with a mark below the batch size, every pair
of kill / stop / signal, cannons abandoned at a stop, and each run's own
dropped count. Unit tests with ``task.Clock``, then the real process.
"""

from __future__ import annotations

import signal

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase

from octtwisted import Transaction
from octtwisted._firing.lifecycle import State
from octtwisted.testing import RecordingSink, make_turret
from tests.helpers import TurretTestCase


def waits(clock: Clock, seconds: float) -> type:
    class Waits(Transaction):
        def run(self) -> Deferred[None]:
            return deferLater(clock, seconds, lambda: None)

    return Waits


class StartWhileStoppingTests(SynchronousTestCase):
    def test_next_run_starts_when_the_stop_ends(self) -> None:
        """
        A start during the stop of a run with 3 s transactions: the turret
        answers Running, starts the next run as soon as the stop ends, and
        the results the old run made after that start are not sent (they
        are counted in its summary's dropped).
        """
        clock = Clock()
        made = make_turret(waits(clock, 3), clock=clock, cannons=2)
        made.orders.order("start", "open fire")
        clock.pump([0.5] * 3)  # 1.5 s in: both transactions in flight
        made.orders.order("stop", None)
        clock.advance(0.5)
        made.orders.order("start", "open fire")
        self.assertIs(made.turret.state, State.RESTARTING)
        self.assertEqual(made.sink.statuses[-1]["status"], "Running")
        sent_before = len(made.sink.results)
        clock.advance(1.0)  # the old transactions end now: 3 s after they began
        self.assertIs(made.turret.state, State.RUNNING)
        self.assertEqual(len(made.sink.results), sent_before, "old run's results reached the new HQ")
        first = made.turret.last_summary
        self.assertEqual((first.transactions, first.dropped), (2, 2))
        clock.pump([0.5] * 8)
        self.assertEqual(len(made.sink.results), sent_before + 2)
        self.assertGreaterEqual(min(r["epoch"] for r in made.sink.results[sent_before:]), 3.0)

    def test_stop_cancels_the_pending_start(self) -> None:
        """
        A stop after that start (still stopping): the pending start is off,
        and the turret ends READY.
        """
        clock = Clock()
        made = make_turret(waits(clock, 3), clock=clock, cannons=1)
        made.orders.order("start", "open fire")
        made.orders.order("stop", None)
        made.orders.order("start", "open fire")
        made.orders.order("stop", None)
        clock.pump([0.5] * 8)
        self.assertIs(made.turret.state, State.READY)
        self.assertIsNone(made.turret.run)


class EveryPairTests(SynchronousTestCase):
    """
    Any order of kill, stop and a signal (SIGTERM or SIGINT: both stop the
    service) while the first is under way ends in one defined way.
    """

    OUTCOMES = {
        ("kill", "kill"): (State.KILLED, [0]),
        ("kill", "stop"): (State.KILLED, [0]),
        ("kill", "signal"): (State.KILLED, [0]),
        ("stop", "kill"): (State.KILLED, [0]),
        ("stop", "stop"): (State.READY, []),
        ("stop", "signal"): (State.STOPPED, []),
        ("signal", "kill"): (State.STOPPED, []),
        ("signal", "stop"): (State.STOPPED, []),
        ("signal", "signal"): (State.STOPPED, []),
    }

    def give(self, made: Any, what: str) -> None:
        if what == "signal":
            made.turret.stopService()
        else:
            made.orders.order(what, None)

    def test_every_pair(self) -> None:
        """
        Each pair, with transactions that outlast the stop timeout: the
        final state and the exit statuses asked for are as in OUTCOMES,
        the final status is sent once, and no transition is refused.
        """
        for (first, second), (state, exits) in self.OUTCOMES.items():
            clock = Clock()
            made = make_turret(waits(clock, 30), clock=clock, cannons=2, stop_timeout=2)
            made.orders.order("start", "open fire")
            clock.advance(1)
            self.give(made, first)
            clock.advance(0.5)
            self.give(made, second)
            clock.pump([0.5] * 12)
            self.assertIs(made.turret.state, state, (first, second))
            self.assertEqual(made.exits, exits, (first, second))
            finals = [s["status"] for s in made.sink.statuses if s["status"] == "Killed"]
            self.assertLessEqual(len(finals), 1, (first, second))
            self.flushLoggedErrors()  # none expected; checked below
            self.assertEqual(self.flushLoggedErrors(), [], (first, second))


class AbandonedCannonTests(SynchronousTestCase):
    def test_late_results_discarded(self) -> None:
        """
        Cannons whose transactions swallow the cancel are abandoned after
        the stop timeout and the grace; when they end, during the next
        run, their results are discarded (counted on the old run), never
        sent, and not in the next run's summary.
        """
        clock = Clock()
        stubborn = [True]

        class Stubborn(Transaction):
            async def run(self) -> None:
                if not stubborn[0]:
                    await deferLater(clock, 1, lambda: None)
                    return
                try:
                    await deferLater(clock, 10, lambda: None)
                except CancelledError:
                    await deferLater(clock, 5, lambda: None)  # a retry

        made = make_turret(Stubborn, clock=clock, cannons=3, stop_timeout=1)
        made.orders.order("start", "open fire")
        first = made.turret.run
        made.orders.order("stop", None)
        clock.pump([0.5] * 6)  # stop timeout 1 s + grace 1 s: abandoned
        self.assertIs(made.turret.state, State.READY)
        self.assertEqual(made.turret.last_summary.transactions, 0)
        stubborn[0] = False
        second_start = clock.seconds()
        made.orders.order("start", "open fire")
        clock.pump([0.5] * 8)  # the abandoned ones end 6 s after they began
        self.assertEqual(first.discarded, 3)
        made.orders.order("stop", None)
        clock.pump([0.5] * 6)
        sent = made.sink.results
        self.assertEqual(len(sent), made.turret.last_summary.transactions)
        self.assertGreater(len(sent), 0)
        self.assertGreaterEqual(min(r["epoch"] for r in sent), second_start)


class PerRunDroppedTests(SynchronousTestCase):
    def test_dropped_counted_after_the_flush(self) -> None:
        """
        A run's dropped count is its own and counts what its final flush
        gave up on (kill): not the process-wide counter read before.
        """
        clock = Clock()

        class GivesUpAtFlush(RecordingSink):
            def flush(self, timeout: float) -> Deferred[None]:
                self.dropped += 7
                return super().flush(timeout)

        made = make_turret(waits(clock, 0.1), clock=clock, cannons=1, sink=GivesUpAtFlush())
        made.sink.dropped = 100  # given up on before this run began
        made.orders.order("start", "open fire")
        clock.pump([0.1] * 5)
        made.orders.order("kill", None)
        clock.pump([0.1] * 5)
        self.assertEqual(made.turret.last_summary.dropped, 7)


class RacesEndToEnd(TurretTestCase):
    timeout = 90
    turret_keys = {"rampup": 0}

    def setUp(self) -> None:
        self.hq = self.start_hq()

    async def test_start_while_stopping(self) -> None:
        """
        Two runs back to back with 3 s transactions: stop, then start while
        the first run's transactions are still in flight. The turret
        restarts (stopping -> restarting), the second run fires (results
        arrive within 8 s), and none of its results began before that start.
        """
        hq = self.hq
        turret = self.launch("three_seconds.py", cannons=3)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await turret.wait_output("all 3 cannons firing")
        hq.publish("stop", None)
        await turret.wait_output("running -> stopping")
        second_start = reactor.seconds()
        mark = len(hq.results)
        hq.publish("start", "open fire")
        results = await hq.wait_for_results(mark + 3, timeout=8)
        self.assertIn("stopping -> restarting", turret.output)
        import time

        wall_offset = time.time() - reactor.seconds()
        for result in results[mark:]:
            self.assertGreaterEqual(result["epoch"], second_start + wall_offset - 0.05)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)

    async def test_low_max_pending_results(self) -> None:
        """
        max_pending_results below the batch size (20) with fast cannons:
        results keep coming (the backpressure lets the cannons go again
        whenever the queue is below the mark).
        """
        hq = self.hq
        turret = self.launch("quick.py", cannons=4, max_pending_results=20)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(2000, timeout=20)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)

    async def test_abandoned_cannons_do_not_feed_the_next_run(self) -> None:
        """
        Three cannons swallow the cancel at the stop timeout (1 s) and end
        4 s later, during the next run: none of their results reaches the
        HQ, and every result of the next run began after its start.
        """
        hq = self.hq
        turret = self.launch("swallows_cancel.py", cannons=3, stop_timeout=1)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await turret.wait_output("all 3 cannons firing")
        mark = len(hq.statuses)
        hq.publish("stop", None)
        await hq.wait_for_status("ready", turret.uuid, after=mark, timeout=10)
        hq.publish("set_transaction_context", {"fast": True})
        import time

        second_start = time.time()
        hq.publish("start", "open fire")
        await turret.wait_output("its result is discarded, not sent (3 so far)", timeout=20)
        await hq.handshake(turret.uuid)
        await hq.wait_for_results(21)
        self.assertGreaterEqual(min(r["epoch"] for r in hq.results), second_start - 0.05)
        self.assertIn("its result is discarded, not sent", turret.output)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)

    async def test_sigterm_during_kill(self) -> None:
        """
        SIGTERM while a kill waits for transactions in flight: the kill
        ends as a kill (the HQ gets Killed, the process exits 0).
        """
        hq = self.hq
        turret = self.launch("three_seconds.py", cannons=2, stop_timeout=5)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await turret.wait_output("all 2 cannons firing")
        hq.publish("kill", None)
        await turret.wait_output("running -> killing")
        turret.signal(signal.SIGTERM)
        code = await turret.wait_exit(timeout=15)
        await hq.wait_for_status("Killed", turret.uuid, timeout=5)
        self.assertEqual(code, 0, turret.output)


class SwallowedTimeoutTests(SynchronousTestCase):
    def test_timeout_is_an_error_whatever_the_script_does(self) -> None:
        """
        A run that catches the cancellation of its transaction_timeout and
        goes on to succeed is still a timeout error result (issue 12,
        item 4), with its real run time.
        """
        clock = Clock()

        class Swallows(Transaction):
            async def run(self) -> None:
                try:
                    await deferLater(clock, 10, lambda: None)
                except CancelledError:
                    await deferLater(clock, 1, lambda: None)

        made = make_turret(Swallows, clock=clock, cannons=1, transaction_timeout=0.5)
        made.orders.order("start", "open fire")
        clock.pump([0.25] * 8)
        result = made.sink.results[0]
        self.assertEqual(
            result["error"], "timeout after 0.5s (the script went on after it was cancelled)"
        )
        self.assertAlmostEqual(result["scriptrun_time"], 1.5)
