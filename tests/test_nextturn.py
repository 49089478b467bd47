"""
Tests for :class:`octtwisted._firing.nextturn.NextTurn` and for how a
cannon of a Deferred script starts its next transaction through it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.clocks import Clocks
from octtwisted._core.messages import Result
from octtwisted._firing.nextturn import NextTurn
from octtwisted._firing.steps import ReactorCannonFactory


class NextTurnTests(SynchronousTestCase):
    def test_calls_wait_for_the_next_turn_and_share_one_timer(self) -> None:
        """
        Calls queued in one turn are made together, in order, in the next
        turn, through a single delayed call.
        """
        clock = Clock()
        turn = NextTurn(clock)
        made: list[int] = []
        for n in range(3):
            turn.call(made.append, n)
        self.assertEqual(made, [])
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(0)
        self.assertEqual(made, [0, 1, 2])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_a_call_queued_by_a_call_gets_a_timer_of_its_own(self) -> None:
        """
        A call queued while the turn's calls are being made is not made in
        that loop (no endless turn): it gets a new delayed call, which the
        reactor runs in its next turn.
        """
        clock = Clock()
        turn = NextTurn(clock)
        made: list[str] = []

        def first(_: object) -> None:
            turn.call(made.append, "second")
            made.append(f"first, then {len(clock.getDelayedCalls())} timer")

        turn.call(first, None)
        clock.advance(0)
        self.assertEqual(made, ["first, then 1 timer", "second"])

    def test_a_failing_call_does_not_stop_the_others(self) -> None:
        """
        A call that raises is logged; the calls after it are still made.
        """
        clock = Clock()
        turn = NextTurn(clock)
        made: list[int] = []

        def broken(_: object) -> None:
            raise RuntimeError("bug")

        turn.call(broken, None)
        turn.call(made.append, 1)
        clock.advance(0)
        self.assertEqual(made, [1])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class _Script:
    """A transaction whose ``run`` returns a Deferred the test fires."""

    def __init__(self) -> None:
        self.pending: list[Deferred[None]] = []

    def run(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.pending.append(d)
        return d


class CannonTurnTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.results: list[Result] = []
        self.steps = ReactorCannonFactory()

    def cannon(self, script: _Script, index: int = 0) -> Any:
        return self.steps.make_cannon(
            index=index,
            turret_name="t",
            make_transaction=lambda: script,
            clocks=Clocks.fake(self.clock),
            report=self.results.append,
            started_at=0.0,
        )

    def test_next_transaction_starts_in_the_next_turn(self) -> None:
        """
        When a transaction's Deferred fires, its result is reported at
        once and the next transaction starts in the next turn, not inside
        the callback that ended the first.
        """
        script = _Script()
        cannon = self.cannon(script)
        cannon.start()
        self.assertEqual(len(script.pending), 1)
        script.pending[0].callback(None)
        self.assertEqual(len(self.results), 1)
        self.assertEqual(len(script.pending), 1)
        self.clock.advance(0)
        self.assertEqual(len(script.pending), 2)
        cannon.stop()
        script.pending[1].callback(None)
        self.assertEqual(len(self.results), 2)

    def test_cannons_of_a_step_caller_share_one_timer_per_turn(self) -> None:
        """
        Ten cannons whose transactions end in one turn make one delayed
        call between them, and all ten start again in the next turn.
        """
        scripts = [_Script() for _ in range(10)]
        cannons = [self.cannon(script, n) for n, script in enumerate(scripts)]
        for cannon in cannons:
            cannon.start()
        for script in scripts:
            script.pending[0].callback(None)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(0)
        self.assertEqual([len(s.pending) for s in scripts], [2] * 10)

    def test_stop_while_the_next_start_is_queued(self) -> None:
        """
        A cannon stopped between the end of a transaction and its queued
        next start does not start again, and its stop Deferred fires.
        """
        script = _Script()
        cannon = self.cannon(script)
        cannon.start()
        script.pending[0].callback(None)
        stopped = cannon.stop()
        self.assertNoResult(stopped)
        self.clock.advance(0)
        self.successResultOf(stopped)
        self.assertEqual(len(script.pending), 1)
        self.assertEqual(len(self.results), 1)
