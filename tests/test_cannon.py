"""
Unit tests of the core every cannon shares: the lifecycle of
:class:`~octtwisted._firing.cannon.Cannon` around a barrel played by the
test, and :mod:`~octtwisted._firing.outcome` (the one way a result is
built, and the steps worth calling).
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.clocks import Clocks
from octtwisted._core.messages import Result
from octtwisted._core.requesttimers import add_request_timer
from octtwisted._firing.cannon import Cannon, CannonSettings
from octtwisted._firing.nextturn import NextTurn
from octtwisted._firing.on_reactor import reactor_cannon
from octtwisted._firing.outcome import NO_TRANSACTION, clean_timers, result_of, steps_of
from octtwisted._scripts.transaction import Transaction


class PlayedBarrel:
    """
    A barrel whose iterations do what the test says (``plan``: None to
    end at once, a Deferred to wait for, or an exception to raise), and
    which writes down what the cannon asked of it.
    """

    def __init__(self, cannon: Cannon) -> None:
        self.cannon = cannon
        self.plan: list[Any] = []
        self.calls: list[str] = []
        self.fired = 0

    def fire(self) -> Deferred[None] | None:
        self.calls.append("fire")
        step = self.plan.pop(0) if self.plan else None
        if isinstance(step, BaseException):
            raise step
        result: Deferred[None] | None = step
        return result

    def stopping(self) -> None:
        self.calls.append(f"stopping (loop running: {self.cannon.loop.running})")

    def cancel_in_flight(self, reason: str) -> None:
        self.calls.append(f"cancel: {reason}")

    def ended(self) -> None:
        self.calls.append("ended")


class CannonLifecycleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.crashes: list[Failure] = []

    def cannon(self, **kwargs: Any) -> tuple[Cannon, PlayedBarrel]:
        barrels: list[PlayedBarrel] = []

        def make(cannon: Cannon) -> PlayedBarrel:
            barrels.append(PlayedBarrel(cannon))
            return barrels[0]

        settings = CannonSettings(
            index=3,
            turret_name="t",
            make_transaction=object,
            clocks=Clocks.fake(self.clock),
            report=lambda result: None,
            started_at=0.0,
            **kwargs,
        )
        cannon = Cannon(settings, make)
        return cannon, barrels[0]

    def test_start_and_stop(self) -> None:
        """
        start() fires the first iteration at once; stop() tells the barrel
        before the loop stops, fires once the loop has ended, and the
        barrel is told it ended (once); a second start() is refused.
        """
        cannon, barrel = self.cannon()
        self.assertFalse(cannon.started)
        wait: Deferred[None] = Deferred()
        barrel.plan = [wait]
        cannon.start()
        self.assertEqual(barrel.calls, ["fire"])
        self.assertTrue(cannon.started)
        self.assertTrue(cannon.running)
        stopped = cannon.stop()
        self.assertEqual(barrel.calls, ["fire", "stopping (loop running: True)"])
        self.assertNoResult(stopped)
        wait.callback(None)
        self.successResultOf(stopped)
        self.assertFalse(cannon.running)
        self.assertEqual(barrel.calls[-1], "ended")
        self.assertEqual(barrel.calls.count("ended"), 1)
        self.assertRaises(RuntimeError, cannon.start)

    def test_stop_before_start(self) -> None:
        """
        A cannon never started stops at once, and its barrel is not told.
        """
        cannon, barrel = self.cannon()
        self.successResultOf(cannon.stop())
        self.assertEqual(barrel.calls, [])

    def test_idle_cut_short_by_stop(self) -> None:
        """
        An idle wait holds the next iteration back for its seconds; stop()
        cancels it and the cannon stops at once, with no error.
        """
        cannon, barrel = self.cannon()
        barrel.plan = [cannon.idle(5.0)]
        cannon.start()
        self.clock.advance(4.9)
        self.assertEqual(barrel.calls, ["fire"])
        self.successResultOf(cannon.stop())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_hold_then_fire_again(self) -> None:
        """
        A held iteration goes on when the hold fires: the next iteration
        follows in the next turn.
        """
        cannon, barrel = self.cannon()
        gate: Deferred[None] = Deferred()
        barrel.plan = [cannon.hold(gate), Deferred()]
        cannon.start()
        self.clock.advance(1)
        self.assertEqual(barrel.calls, ["fire"])
        gate.callback(None)
        self.clock.advance(0)
        self.assertEqual(barrel.calls, ["fire", "fire"])

    def test_cancel_in_flight_and_fired_are_the_barrels(self) -> None:
        """
        cancel_in_flight goes to the barrel with its reason, and ``fired``
        is the barrel's count.
        """
        cannon, barrel = self.cannon()
        barrel.fired = 7
        cannon.cancel_in_flight("cancelled: still running")
        self.assertEqual(barrel.calls, ["cancel: cancelled: still running"])
        self.assertEqual(cannon.fired, 7)

    def test_crash_to_on_crash(self) -> None:
        """
        An iteration that raises (a bug of the cannon's machinery) ends the
        cannon through on_crash, then the barrel is told it ended.
        """
        cannon, barrel = self.cannon(on_crash=self.crashes.append)
        barrel.plan = [ZeroDivisionError("bug")]
        cannon.start()
        self.assertEqual(len(self.crashes), 1)
        self.assertTrue(self.crashes[0].check(ZeroDivisionError))
        self.assertFalse(cannon.running)
        self.assertEqual(barrel.calls, ["fire", "ended"])
        self.successResultOf(cannon.stop())

    def test_crash_logged_without_on_crash(self) -> None:
        """
        Without on_crash, a crash is logged (with the cannon's index).
        """
        cannon, barrel = self.cannon()
        barrel.plan = [ZeroDivisionError("bug")]
        cannon.start()
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(barrel.calls, ["fire", "ended"])


class StuckTearDown(Transaction):
    """Its run never ends; its tear_down neither (or it raises)."""

    def __init__(self, raises: bool, tear_downs: list[Deferred[None]]) -> None:
        super().__init__({}, {})
        self.raises = raises
        self.tear_downs = tear_downs

    def run(self) -> Deferred[None]:
        return Deferred()

    def tear_down(self) -> Deferred[None]:
        if self.raises:
            raise OSError("tear_down broke")
        self.tear_downs.append(Deferred())
        return self.tear_downs[-1]


class ReactorCancelTests(SynchronousTestCase):
    def test_tear_down_not_waited_for_after_cancel(self) -> None:
        """
        At the stop timeout the run in flight is cancelled and reported
        with the reason at once; tear_down is called, not waited for: its
        later failure is swallowed, and one that raises is no error of
        the result either.
        """
        for raises in (False, True):
            clock = Clock()
            results: list[Result] = []
            tear_downs: list[Deferred[None]] = []
            settings = CannonSettings(
                index=0,
                turret_name="t",
                make_transaction=lambda: StuckTearDown(raises, tear_downs),
                clocks=Clocks.fake(clock),
                report=results.append,
                started_at=0.0,
            )
            cannon = reactor_cannon(settings, NextTurn(clock))
            cannon.start()
            stopped = cannon.stop()
            clock.advance(2)
            cannon.cancel_in_flight("cancelled: at the stop timeout")
            self.successResultOf(stopped)
            self.assertEqual([r.error for r in results], ["cancelled: at the stop timeout"])
            self.assertEqual([r.scriptrun_time for r in results], [2.0])
            self.assertEqual(len(tear_downs), 0 if raises else 1)
            for late in tear_downs:
                late.errback(OSError("late"))
            self.assertEqual(self.flushLoggedErrors(OSError), [])


class Timed:
    """A transaction with custom timers, good and bad."""

    def __init__(self, timers: object) -> None:
        self.custom_timers = timers


class Broken:
    """A transaction whose custom_timers cannot be read."""

    @property
    def custom_timers(self) -> dict[str, float]:
        raise KeyError("gone")


class ResultOfTests(SynchronousTestCase):
    def settings(self) -> CannonSettings:
        return CannonSettings(
            index=0,
            turret_name="turret-1",
            make_transaction=object,
            clocks=Clocks.fake(),
            report=lambda result: None,
            started_at=100.0,
        )

    def test_figures(self) -> None:
        """
        A result carries the turret's name, elapsed from the start of
        firing, the wall-clock start, the run time, the error and the
        transaction's timers.
        """
        result = result_of(self.settings(), Timed({"a": 1}), 102.5, 1e9, 0.25, "")
        self.assertEqual(
            result,
            Result(
                turret_name="turret-1",
                elapsed=2.5,
                epoch=1e9,
                scriptrun_time=0.25,
                error="",
                custom_timers={"a": 1.0},
            ),
        )

    def test_bad_timers_join_the_error(self) -> None:
        """
        Timers that are not numbers are dropped and named after the error
        (or are the error); timers that cannot be read are an error too.
        """
        settings = self.settings()
        mixed = result_of(settings, Timed({"a": 1, "b": "x"}), 100.0, 0.0, 0.0, "E: boom")
        self.assertEqual(mixed.custom_timers, {"a": 1.0})
        self.assertEqual(mixed.error, "E: boom; custom timers that are not numbers of seconds: b")
        alone = result_of(settings, Timed([1]), 100.0, 0.0, 0.0, "")
        self.assertEqual(alone.error, "custom_timers is a list, not a dict")
        broken = result_of(settings, Broken(), 100.0, 0.0, 0.0, "")
        self.assertEqual(broken.error, "custom_timers: KeyError: 'gone'")

    def test_clean_timers_every_value(self) -> None:
        """
        The common case (text names, finite float seconds) and every other
        get the same answer: infinite, NaN and non-numbers are dropped and
        named, ints and float subclasses become floats, names become text;
        the dict sent is never the transaction's own.
        """
        class Seconds(float):
            pass

        timers = {"a": 0.5}
        kept, error = clean_timers(timers)
        self.assertEqual((kept, error), ({"a": 0.5}, ""))
        self.assertIsNot(kept, timers)
        for bad in (float("inf"), float("-inf"), float("nan"), "x", None):
            kept, error = clean_timers({"a": 0.5, "b": bad})
            self.assertEqual(kept, {"a": 0.5})
            self.assertEqual(error, "custom timers that are not numbers of seconds: b")
        kept, error = clean_timers({"a": 1, "b": Seconds(0.25), 7: 0.5, "c": True})
        self.assertEqual((kept, error), ({"a": 1.0, "b": 0.25, "7": 0.5, "c": 1.0}, ""))
        self.assertEqual([type(v) for v in kept.values()], [float] * 4)
        self.assertEqual(clean_timers({}), ({}, ""))

    def test_no_transaction_no_timers(self) -> None:
        """
        Without a transaction (not made, or claimed from its thread) a
        result has no timers and its error as given.
        """
        result = result_of(self.settings(), None, 101.0, 0.0, 0.0, "cancelled")
        self.assertEqual((result.custom_timers, result.error), ({}, "cancelled"))

    def test_request_timers_taken(self) -> None:
        """
        With ``request_timers``, a result takes its transaction's request
        timers as they are, apart from the script's own timers (a timer
        named like a request included), and the transaction's next result
        starts without them; on the wire they are one ``custom_timers``
        object, where a script's timer named like a request adds to it.
        Without ``request_timers`` they are not read.
        """
        settings = attrs.evolve(self.settings(), request_timers=True)
        transaction = Timed({"mine": 0.5, "GET /a": 0.125})
        add_request_timer(transaction, "GET /a", 0.25)
        add_request_timer(transaction, "GET /b", 1.0)
        add_request_timer(transaction, "GET /a", 0.25)
        result = result_of(settings, transaction, 100.0, 0.0, 0.0, "")
        self.assertEqual(result.custom_timers, {"mine": 0.5, "GET /a": 0.125})
        self.assertEqual(result.request_timers, {"GET /a": 0.5, "GET /b": 1.0})
        wire = {"GET /a": 0.625, "GET /b": 1.0, "mine": 0.5}
        self.assertEqual(result.to_dict()["custom_timers"], wire)
        self.assertEqual(result.hq_timers(), wire)
        self.assertEqual(result_of(settings, transaction, 100.0, 0.0, 0.0, "").request_timers, {})
        add_request_timer(transaction, "GET /c", 1.0)
        off = result_of(self.settings(), transaction, 100.0, 0.0, 0.0, "")
        self.assertEqual(off.request_timers, {})
        self.assertEqual(off.to_dict()["custom_timers"], {"mine": 0.5, "GET /a": 0.125})


class StepsOfTests(SynchronousTestCase):
    def test_steps_worth_calling(self) -> None:
        """
        A base class's setup and tear_down that do nothing are left out;
        a script's own are kept; before a transaction is made there is
        none.
        """

        class Bare(Transaction):
            def run(self) -> None:
                pass

        class Own(Bare):
            def setup(self) -> None:
                pass

            def tear_down(self) -> None:
                pass

        bare = steps_of(Bare({}, {}))
        self.assertIsNone(bare.setup)
        self.assertIsNone(bare.tear_down)
        own = Own({}, {})
        steps = steps_of(own)
        self.assertIs(steps.transaction, own)
        self.assertEqual((steps.setup, steps.tear_down), (own.setup, own.tear_down))
        self.assertIsNone(NO_TRANSACTION.transaction)
