"""
Tests for :mod:`octtwisted._firing.rampup`, driven by ``task.Clock``.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._firing.rampup import RampupScheduler, start_delays


class RampupTests(SynchronousTestCase):
    def schedule(self, count: int, rampup: float) -> tuple[Clock, RampupScheduler, list[tuple[int, float]]]:
        clock = Clock()
        started: list[tuple[int, float]] = []
        scheduler = RampupScheduler(clock, count, lambda i: started.append((i, clock.seconds())), rampup)
        scheduler.start()
        return clock, scheduler, started

    def test_five_over_ten(self) -> None:
        """
        5 cannons over 10 s start at 0, 2, 4, 6 and 8 s.
        """
        clock, scheduler, started = self.schedule(5, 10)
        clock.pump([1] * 10)
        self.assertEqual(started, [(0, 0), (1, 2), (2, 4), (3, 6), (4, 8)])
        self.assertTrue(scheduler.done)
        self.assertEqual(scheduler.started, 5)

    def test_zero_rampup(self) -> None:
        """
        A rampup of 0 starts every cannon at once, without the clock moving.
        """
        clock, scheduler, started = self.schedule(4, 0)
        self.assertEqual(started, [(i, 0) for i in range(4)])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_cancel(self) -> None:
        """
        Cancelling keeps the cannons not yet started from starting.
        """
        clock, scheduler, started = self.schedule(4, 4)
        clock.advance(1.5)
        scheduler.cancel()
        clock.advance(10)
        self.assertEqual([i for i, _ in started], [0, 1])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_delays(self) -> None:
        """
        The delay of cannon i is i * rampup / cannons.
        """
        self.assertEqual(start_delays(4, 2), [0, 0.5, 1.0, 1.5])
        self.assertEqual(start_delays(3, 0), [0, 0, 0])
