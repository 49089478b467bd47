"""
Unit tests of the turret core (:class:`TurretService` and its cannons),
with in-memory fakes for the HQ link and ``task.Clock`` for all time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase

from octtwisted import Transaction
from octtwisted._core.config import load_config
from octtwisted._firing.lifecycle import State
from octtwisted._firing.leaving import EXIT_ABORTED
from octtwisted._firing.turret import TurretService
from octtwisted.testing import RecordingSink, make_turret
from tests.helpers import write_config

RESULT_KEYS = {"turret_name", "elapsed", "epoch", "scriptrun_time", "error", "custom_timers"}


class TurretTestCase(SynchronousTestCase):
    def make_turret(
        self, transaction_class: Any, sink: Any = None, gc: Any = None, **keys: Any
    ) -> TurretService:
        path = write_config(Path(self.mktemp()), **keys)
        made = make_turret(transaction_class, clock=self.clock, sink=sink, gc=gc, config=load_config(path))
        self.orders, self.sink, self.exits = made.orders, made.sink, made.exits
        self.turret = made.turret
        return self.turret

    def waiting(self, seconds: float) -> type:
        """
        A Transaction class whose run waits ``seconds`` on the test clock.
        """
        clock = self.clock

        class Waiting(Transaction):
            def run(self) -> Deferred[None]:
                self.custom_timers["half"] = seconds / 2
                return deferLater(clock, seconds, lambda: None)

        return Waiting

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)

    def statuses(self) -> list[str]:
        return [s["status"] for s in self.sink.statuses]


class AnnounceAndStatusTests(TurretTestCase):
    def test_ready_announced_every_two_seconds(self) -> None:
        """
        Once started, the turret says ``ready`` at once and every 2 s while
        it waits; the status carries the configured numbers.
        """
        self.make_turret(Transaction, cannons=3, rampup=6)
        self.assertEqual(self.statuses(), ["ready"])
        # Exactly the six keys: the real HQ fails on any other.
        self.clock.advance(2)
        self.clock.advance(2)
        self.assertEqual(self.statuses(), ["ready"] * 3)
        status = self.sink.statuses[0]
        self.assertEqual(
            status,
            {
                "turret": "test-turret",
                "status": "ready",
                "uuid": "turret-1",
                "rampup": 6,
                "script": "plain.py",
                "cannons": 3,
            },
        )

    def test_status_request_in_every_state(self) -> None:
        """
        ``status_request`` is answered at once when ready, running and
        stopping, with the state's word; announcing stops while running.
        """
        self.make_turret(self.waiting(5), cannons=1)
        self.orders.order("status_request")
        self.assertEqual(self.statuses(), ["ready", "ready"])
        self.orders.order("start", "open fire")
        self.assertEqual(self.statuses()[-1], "Running")
        count = len(self.statuses())
        self.clock.advance(2)
        self.assertEqual(self.statuses()[count:], [], "announced while running")
        self.orders.order("status_request")
        self.assertEqual(self.statuses()[-1], "Running")
        self.orders.order("stop", "premature stop")
        self.orders.order("status_request", topic="turret-1")
        self.assertEqual(self.statuses()[-1], "Running")
        self.clock.advance(3)
        self.assertEqual(self.statuses()[-1], "ready")


    def test_status_answers_coalesced(self) -> None:
        """
        The real HQ asks again as soon as it gets anything: requests within
        0.5 s of an answer get one answer at the end of those 0.5 s.
        """
        self.make_turret(Transaction)
        for _ in range(10):
            self.orders.order("status_request")
        self.assertEqual(self.statuses(), ["ready", "ready"])
        self.clock.advance(0.5)
        self.assertEqual(self.statuses(), ["ready"] * 3)
        self.clock.advance(0.1)
        self.orders.order("status_request")
        self.assertEqual(len(self.statuses()), 3)
        self.clock.advance(0.4)
        self.assertEqual(len(self.statuses()), 4)


class FiringTests(TurretTestCase):
    def test_rampup(self) -> None:
        """
        ``start`` brings 5 cannons in over 10 s: one every 2 s.
        """
        self.make_turret(self.waiting(0.5), cannons=5, rampup=10)
        self.orders.order("start", "open fire")
        seen = []
        for _ in range(5):
            seen.append(self.turret.cannons_started)
            self.clock.advance(2)
        self.assertEqual(seen, [1, 2, 3, 4, 5])

    def test_pacing(self) -> None:
        """
        With pacing, a transaction starts at most once per period: a 0.3 s
        run with pacing 1 s starts at 0, 1, 2 s; a 1.5 s run (longer than
        the period) starts again at once.
        """
        self.make_turret(self.waiting(0.3), cannons=1, pacing=1)
        start = self.clock.seconds()
        self.orders.order("start", "open fire")
        self.clock.pump([0.1] * 25)
        self.assertEqual([round(r["epoch"] - start, 6) for r in self.sink.results], [0, 1, 2])

        self.make_turret(self.waiting(1.5), cannons=1, pacing=1)
        start = self.clock.seconds()
        self.orders.order("start", "open fire")
        self.clock.pump([0.1] * 35)
        self.assertEqual([round(r["epoch"] - start, 6) for r in self.sink.results], [0, 1.5])

    def test_results(self) -> None:
        """
        Every transaction gives one result with the six keys; scriptrun_time
        is the run's duration, elapsed the time since ``start``, epoch the
        wall clock at the transaction's start.
        """
        self.make_turret(self.waiting(0.05), cannons=1)
        start = self.clock.seconds()
        self.orders.order("start", "open fire")
        for _ in range(3):
            self.clock.advance(0.05)
            self.clock.advance(0)
        results = self.sink.results
        self.assertEqual(len(results), 3)
        for i, result in enumerate(results):
            self.assertEqual(set(result), RESULT_KEYS)
            self.assertEqual(result["turret_name"], "test-turret")
            self.assertEqual(result["error"], "")
            self.assertAlmostEqual(result["scriptrun_time"], 0.05)
            self.assertAlmostEqual(result["elapsed"], 0.05 * i)
            self.assertAlmostEqual(result["epoch"], start + 0.05 * i)
            self.assertEqual(result["custom_timers"], {"half": 0.025})

    def test_second_start_ignored(self) -> None:
        """
        A ``start`` while running changes nothing.
        """
        self.make_turret(self.waiting(1), cannons=2)
        self.orders.order("start", "open fire")
        cannons = list(self.turret.run.cannons)
        self.orders.order("start", "open fire")
        self.assertEqual(self.turret.run.cannons, cannons)
        self.assertEqual(self.statuses().count("Running"), 1)

    def test_script_errors_become_results(self) -> None:
        """
        An exception in setup, run or tear_down, raised or in a Deferred,
        becomes an error result ``Type: message``, and the cannon goes on.
        (A pacing of 1 s makes each iteration one clock step.)
        """
        calls = {"n": 0}

        class Flaky(Transaction):
            def setup(self) -> None:
                calls["n"] += 1
                if calls["n"] == 1:
                    raise KeyError("setup key")

            def run(self) -> Any:
                if calls["n"] == 2:
                    raise ValueError("bad value")
                if calls["n"] == 3:
                    return fail(RuntimeError("deferred failure"))
                return None

            async def tear_down_async(self) -> None:
                raise OSError("async tear down")

            def tear_down(self) -> Any:
                if calls["n"] == 4:
                    return self.tear_down_async()
                return None

        self.make_turret(Flaky, cannons=1, pacing=1)
        self.orders.order("start", "open fire")
        for _ in range(4):
            self.clock.advance(1)
        errors = [r["error"] for r in self.sink.results[:5]]
        self.assertEqual(
            errors,
            [
                "setup: KeyError: 'setup key'",
                "ValueError: bad value",
                "RuntimeError: deferred failure",
                "tear_down: OSError: async tear down",
                "",
            ],
        )
        self.assertTrue(self.turret.run.cannons[0].running)

    def test_transaction_init_error(self) -> None:
        """
        A Transaction whose constructor raises gives error results, and is
        tried again a second later (pacing or not).
        """
        attempts = []

        class Broken(Transaction):
            def __init__(self, config: Any, context: Any) -> None:
                attempts.append(1)
                raise ZeroDivisionError("in init")

        self.make_turret(Broken, cannons=1)
        self.orders.order("start", "open fire")
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(len(attempts), 3)
        self.assertEqual(
            self.sink.results[0]["error"], "Transaction() failed: ZeroDivisionError: in init"
        )

    def test_bad_custom_timers(self) -> None:
        """
        Timers that are not numbers are left out and named in the error.
        """

        class OddTimers(Transaction):
            def run(self) -> None:
                self.custom_timers.update({"ok": 1, "nan": float("nan"), "obj": object()})

        self.make_turret(OddTimers, cannons=1, pacing=1)
        self.orders.order("start", "open fire")
        result = self.sink.results[0]
        self.assertEqual(result["custom_timers"], {"ok": 1.0})
        self.assertIn("nan, obj", result["error"])

    def test_context(self) -> None:
        """
        ``set_transaction_context`` reaches transactions made afterwards.
        """
        seen = []

        class Reader(Transaction):
            def run(self) -> None:
                seen.append(dict(self.context))

        self.make_turret(Reader, cannons=1, pacing=1)
        self.orders.order("set_transaction_context", {"user": "alice"})
        self.orders.order("set_transaction_context", {"token": 7})
        self.orders.order("start", "open fire")
        self.assertEqual(seen[0], {"user": "alice", "token": 7})


class StopKillTests(TurretTestCase):
    def test_stop_waits_for_in_flight_then_ready_and_restart(self) -> None:
        """
        ``stop`` lets the transaction in flight finish, then the turret is
        ``ready`` again and a second ``start`` fires again.
        """
        waiting = self.waiting(3)
        self.make_turret(waiting, cannons=2)
        clock = self.clock
        self.orders.order("start", "open fire")
        clock.advance(1)
        self.orders.order("stop", "premature stop")
        self.assertIs(self.turret.state, State.STOPPING)
        self.assertEqual(self.sink.results, [])
        clock.advance(2)
        self.assertIs(self.turret.state, State.READY)
        self.assertEqual(len(self.sink.results), 2)
        self.assertEqual({r["error"] for r in self.sink.results}, {""})
        self.assertEqual(self.statuses()[-1], "ready")
        clock.advance(10)
        self.assertEqual(len(self.sink.results), 2, "cannons kept firing after stop")
        self.orders.order("start", "open fire")
        self.assertIs(self.turret.state, State.RUNNING)
        clock.advance(3)
        clock.advance(0)
        self.assertEqual(len(self.sink.results), 4)

    def test_stop_timeout(self) -> None:
        """
        A transaction still running at the stop timeout is cancelled and
        reported as an error; then the turret is ready.
        """

        class Hangs(Transaction):
            def run(self) -> Deferred[None]:
                return Deferred()

        self.make_turret(Hangs, cannons=2, stop_timeout=4)
        self.orders.order("start", "open fire")
        self.orders.order("stop", "premature stop")
        self.clock.advance(3.9)
        self.assertIs(self.turret.state, State.STOPPING)
        self.clock.advance(0.1)
        self.assertIs(self.turret.state, State.READY)
        self.assertEqual(
            [r["error"] for r in self.sink.results],
            ["cancelled: still running at the stop timeout (4s)"] * 2,
        )
        self.assertEqual([r["scriptrun_time"] for r in self.sink.results], [4.0, 4.0])

    def test_transaction_timeout(self) -> None:
        """
        With ``transaction_timeout``, a run that takes longer is cancelled
        and reported as ``timeout after Xs``; the cannon goes on.
        """

        class Hangs(Transaction):
            def run(self) -> Deferred[None]:
                return Deferred()

        self.make_turret(Hangs, cannons=1, transaction_timeout=1.5)
        self.orders.order("start", "open fire")
        self.clock.advance(1.5)
        self.clock.advance(0)
        self.clock.advance(1.5)
        self.assertEqual([r["error"] for r in self.sink.results], ["timeout after 1.5s"] * 2)
        self.assertTrue(self.turret.run.cannons[0].running)

    def test_kill(self) -> None:
        """
        ``kill`` stops the cannons, says ``Killed`` and exits with status 0.
        """
        self.make_turret(self.waiting(1), cannons=1)
        self.orders.order("start", "open fire")
        self.orders.order("kill", None)
        self.assertIs(self.turret.state, State.KILLING)
        self.clock.advance(1)
        self.assertIs(self.turret.state, State.KILLED)
        self.assertEqual(self.statuses()[-1], "Killed")
        self.assertEqual(self.exits, [0])
        self.assertEqual(len(self.sink.results), 1)

    def test_kill_during_stop_waits(self) -> None:
        """
        A ``kill`` while a ``stop`` waits for a transaction in flight waits
        too: the turret exits only once the cannons have stopped.
        """

        class Hangs(Transaction):
            def run(self) -> Deferred[None]:
                return Deferred()

        self.make_turret(Hangs, cannons=1, stop_timeout=3)
        self.orders.order("start", "open fire")
        self.orders.order("stop", "premature stop")
        self.orders.order("kill", None)
        self.assertIs(self.turret.state, State.KILLING)
        self.assertEqual(self.exits, [])
        self.clock.advance(3)
        self.assertEqual(self.exits, [0])
        self.assertEqual(len(self.sink.results), 1)
        self.assertEqual(self.statuses()[-1], "Killed")

    def test_kill_while_ready(self) -> None:
        """
        ``kill`` while waiting exits at once, saying only ``Killed``.
        """
        self.make_turret(Transaction)
        self.orders.order("kill", None)
        self.assertEqual(self.statuses(), ["ready", "Killed"])
        self.assertEqual(self.exits, [0])

    def test_stop_when_ready_ignored(self) -> None:
        """
        ``stop`` while waiting changes nothing.
        """
        self.make_turret(Transaction)
        self.orders.order("stop", "premature stop")
        self.assertIs(self.turret.state, State.READY)

    def test_stop_service(self) -> None:
        """
        Stopping the service (SIGTERM) stops the cannons within the stop
        timeout and sends a final status.
        """
        self.make_turret(self.waiting(2), cannons=1)
        self.orders.order("start", "open fire")
        d = self.turret.stopService()
        self.assertNoResult(d)
        self.clock.advance(2)
        self.successResultOf(d)
        self.assertIs(self.turret.state, State.STOPPED)
        self.assertEqual(self.statuses()[-1], "Killed")
        self.assertEqual(len(self.sink.results), 1)

    def test_internal_error_aborts(self) -> None:
        """
        An error in the turret itself (here: the sink fails) sends
        ``Aborted`` and exits non-zero.
        """

        class FailingSink(RecordingSink):
            def send_result(self, result: Any) -> None:
                raise RuntimeError("sink broke")

        self.make_turret(Transaction, sink=FailingSink(), cannons=1, pacing=1)
        self.orders.order("start", "open fire")
        self.assertEqual(self.statuses()[-1], "Aborted")
        self.assertEqual(self.exits, [EXIT_ABORTED])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class HQLostTests(TurretTestCase):
    def test_run_stops_when_hq_stays_away(self) -> None:
        """
        If the HQ link is down for hq_lost_timeout while firing, the run
        stops and the turret is ready again; a reconnection in time keeps
        it firing.
        """

        class LinkSink(RecordingSink):
            def on_connected(self, listener: Any) -> None:
                self.connected = listener

            def on_disconnected(self, listener: Any) -> None:
                self.disconnected = listener

        sink = LinkSink()
        self.make_turret(self.waiting(0.5), sink=sink, cannons=1, hq_lost_timeout=30)
        self.orders.order("start", "open fire")
        sink.disconnected()
        self.clock.pump([1] * 20)
        sink.connected()
        self.clock.pump([1] * 20)
        self.assertIs(self.turret.state, State.RUNNING)
        sink.disconnected()
        self.clock.pump([1] * 31)
        self.assertIs(self.turret.state, State.READY)


class EveryOrderInEveryStateTests(TurretTestCase):
    """
    Each order, given in each state a running turret can be in: the state
    it leads to.
    """

    def turret_in(self, state: State) -> TurretService:
        class Slow(Transaction):
            def run(self) -> Deferred[None]:
                return Deferred()  # keeps STOPPING until the stop timeout

        turret = self.make_turret(Slow, cannons=1, stop_timeout=5)
        if state in (State.RUNNING, State.STOPPING, State.RESTARTING):
            self.orders.order("start", "open fire")
        if state in (State.STOPPING, State.RESTARTING):
            self.orders.order("stop", "premature stop")
        if state is State.RESTARTING:
            self.orders.order("start", "open fire")
        self.assertIs(turret.state, state)
        return turret

    def test_table(self) -> None:
        """
        ready: start -> running, stop ignored, kill -> killed;
        running: start ignored, stop -> stopping, kill -> killing;
        stopping: start -> restarting (the next run starts when the stop
        ends), stop ignored, kill -> killing; restarting: start ignored,
        stop -> stopping (the pending start is off), kill -> killing;
        status_request and set_transaction_context never change the state.
        """
        table = {
            State.READY: {"start": State.RUNNING, "stop": State.READY, "kill": State.KILLED},
            State.RUNNING: {"start": State.RUNNING, "stop": State.STOPPING, "kill": State.KILLING},
            State.STOPPING: {"start": State.RESTARTING, "stop": State.STOPPING, "kill": State.KILLING},
            State.RESTARTING: {"start": State.RESTARTING, "stop": State.STOPPING, "kill": State.KILLING},
        }
        for state, outcomes in table.items():
            for command, expected in outcomes.items():
                turret = self.turret_in(state)
                self.orders.order(command, "open fire" if command == "start" else None)
                self.assertIs(turret.state, expected, f"{command} in {state.value}")
            for command, msg in (("status_request", None), ("set_transaction_context", {"k": 1})):
                turret = self.turret_in(state)
                before = len(self.sink.statuses)
                self.clock.advance(1)  # past the answer interval
                self.orders.order(command, msg)
                self.assertIs(turret.state, state)
                if command == "status_request":
                    self.assertGreater(len(self.sink.statuses), before)


class ErrorTextTests(SynchronousTestCase):
    def test_huge_error_cut(self) -> None:
        """
        An error text longer than MAX_ERROR_LENGTH is cut, with ``...``.
        """
        from octtwisted._firing.errortext import MAX_ERROR_LENGTH, describe_error

        text = describe_error(ValueError("x" * 100_000))
        self.assertEqual(len(text), MAX_ERROR_LENGTH)
        self.assertTrue(text.startswith("ValueError: xxx"))
        self.assertTrue(text.endswith("..."))


class FakeCollector:
    """
    Stands in for the ``gc`` module: records what the policy asks of it.
    """

    def __init__(self) -> None:
        self.threshold = (700, 10, 10)
        self.frozen = 0
        self.collections = 0

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, *threshold: int) -> None:
        self.threshold = threshold  # type: ignore[assignment]

    def freeze(self) -> None:
        self.frozen += 1

    def unfreeze(self) -> None:
        self.frozen = 0

    def collect(self) -> int:
        self.collections += 1
        return 0


class GarbageCollectorTests(TurretTestCase):
    def test_gc_settings_restored_after_run(self) -> None:
        """
        While firing, automatic full collections are off, full collections
        come on a timer, and the cannons' objects are frozen once every
        cannon fires; after the run, the thresholds are as before and
        nothing stays frozen. (A fake collector: the test process's own is
        never touched.)
        """
        from octtwisted._firing.gcpolicy import FULL_GC_INTERVAL, CalmGC

        collector = FakeCollector()
        self.make_turret(
            self.waiting(1), cannons=3, rampup=1,
            gc=CalmGC(self.clock, collector=collector),
        )
        self.orders.order("start", "open fire")
        self.assertGreater(collector.threshold[2], 1_000_000)
        self.assertEqual(collector.frozen, 0)
        self.clock.advance(1)
        self.assertGreater(collector.frozen, 0)
        self.clock.advance(FULL_GC_INTERVAL)
        self.assertEqual(collector.collections, 1)
        self.orders.order("stop", "premature stop")
        self.clock.advance(1)
        self.assertIs(self.turret.state, State.READY)
        self.assertEqual(collector.threshold, (700, 10, 10))
        self.assertEqual(collector.frozen, 0)
        self.clock.advance(FULL_GC_INTERVAL)
        self.assertEqual(collector.collections, 1, "collections went on after the run")
