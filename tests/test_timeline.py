"""
The timeline: one point per bucket, exact percentiles per bucket, bounded
memory however long the run.
"""

from __future__ import annotations

import math

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._stats.summary import RunStats
from octtwisted._stats.timeline import Tick, Timeline, percentiles
from tests.test_summary import result


class PercentileTests(SynchronousTestCase):
    def test_from_counts(self) -> None:
        """
        Count and nearest-rank p50/p95/p99 of staged values, in seconds;
        empty counts give NaN.
        """
        counts = {us: 1 for us in range(1, 101)}  # 1..100 us
        total, p50, p95, p99 = percentiles(counts)
        self.assertEqual((total, p50, p95, p99), (100, 50e-6, 95e-6, 99e-6))
        self.assertEqual(percentiles({7: 3})[1:], (7e-6, 7e-6, 7e-6))
        self.assertTrue(all(math.isnan(v) for v in percentiles({})[1:]))


class TimelineTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.stats = RunStats()
        self.active = 3
        self.timeline = Timeline(self.clock, self.stats, lambda: self.active, max_points=8)
        self.ticks: list[Tick] = []
        self.timeline.on_tick(self.ticks.append)
        self.timeline.start()

    def second(self, run_time: float, count: int, errors: int = 0, **timers: float) -> None:
        for i in range(count):
            self.stats.record(result(run_time, error="x" if i < errors else "",
                                     custom_timers=timers))
        self.clock.advance(1.0)

    def test_points_per_second(self) -> None:
        """
        Each second makes a point with its own rate, errors, active cannons
        and percentiles, whatever happened before (no running totals).
        """
        self.second(0.010, 100, errors=5)
        self.active = 7
        self.second(0.200, 50)
        data = self.timeline.to_dict()
        self.assertEqual(data["end"], [1.0, 2.0])
        self.assertEqual(data["transactions_per_second"], [100.0, 50.0])
        self.assertEqual(data["errors_per_second"], [5.0, 0.0])
        self.assertEqual(data["active"], [3.0, 7.0])
        p95 = data["timers"]["scriptrun_time"]["p95"]
        self.assertLess(abs(p95[0] - 0.010), 0.010 * 0.002)
        self.assertLess(abs(p95[1] - 0.200), 0.200 * 0.002)
        self.assertEqual([t.transactions for t in self.ticks], [100, 150])
        self.assertEqual(self.ticks[-1].errors, 5)

    def test_progress_reads_do_not_lose_values(self) -> None:
        """
        Progress lines and summaries read the same histograms: values they
        settle still reach the timeline's bucket.
        """
        for _ in range(10):
            self.stats.record(result(0.05))
        self.stats.take_interval(0.5)
        self.stats.summary(duration=0.5, cannons=1, cannons_reached=1)
        self.clock.advance(1.0)
        self.assertEqual(self.timeline.to_dict()["transactions_per_second"], [10.0])
        self.assertEqual(self.timeline.timers["scriptrun_time"].count[0], 10)

    def test_late_timer_padded(self) -> None:
        """
        A custom timer first seen in the third second has no values before
        (None in JSON), and its own after.
        """
        self.second(0.01, 10)
        self.second(0.01, 10)
        self.second(0.01, 10, login=0.3)
        login = self.timeline.to_dict()["timers"]["login"]
        self.assertEqual(login["p50"][:2], [None, None])
        self.assertLess(abs(login["p50"][2] - 0.3), 0.001)

    def test_stop_closes_partial_bucket(self) -> None:
        """
        Stopping mid-second closes a short bucket, with its rate over its
        own length.
        """
        self.second(0.01, 10)
        for _ in range(5):
            self.stats.record(result(0.01))
        self.clock.advance(0.5)
        self.timeline.stop()
        data = self.timeline.to_dict()
        self.assertEqual(data["end"], [1.0, 1.5])
        self.assertEqual(data["transactions_per_second"], [10.0, 10.0])

    def test_points_bounded(self) -> None:
        """
        Past max_points, points merge two by two and the width doubles:
        100 seconds fit in 8 points, counts add up, and the columns' size
        stays under points * columns * 8 bytes.
        """
        for i in range(100):
            self.second(0.01 if i % 2 else 0.02, 10)
        self.assertLessEqual(len(self.timeline), 8)
        self.assertGreaterEqual(self.timeline.width, 16)
        self.assertEqual(sum(self.timeline.transactions), 1000 - self.open_transactions())
        bound = 8 * (5 + 4) * 8  # points * columns (5, + 4 per timer) * 8 bytes
        for i in range(400):
            self.second(0.01, 10)
            self.assertLessEqual(self.timeline.nbytes(), bound)
        data = self.timeline.to_dict()
        self.assertTrue(all(abs(tps - 10.0) < 1e-9 for tps in data["transactions_per_second"]))
        # Merged p95s are upper bounds: at least the larger true value.
        self.assertGreaterEqual(max(data["timers"]["scriptrun_time"]["p95"][:1]), 0.0199)

    def open_transactions(self) -> int:
        return self.timeline._open_transactions
