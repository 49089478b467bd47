"""
The timeline: one point per bucket, exact percentiles per bucket, bounded
memory however long the run; in the open model, the starts and the start
lag per bucket, fed by the schedule's own start figures.
"""

from __future__ import annotations

import math

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._stats.points import lag_figures
from octtwisted._stats.starts import StartStats
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

    def test_lag_figures(self) -> None:
        """
        The start lag's nearest-rank p50 and p99 and its max, in seconds,
        of staged values; empty counts give NaN.
        """
        counts = {us: 1 for us in range(1, 101)}
        self.assertEqual(lag_figures(counts), (50e-6, 99e-6, 100e-6))
        self.assertEqual(lag_figures({7: 2, 9: 1}), (7e-6, 9e-6, 9e-6))
        self.assertTrue(all(math.isnan(v) for v in lag_figures({})))


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


class StartTimelineTests(SynchronousTestCase):
    """
    The open model's starts in the timeline, fed by the run's StartStats
    (the same counts and histogram as the summary and the progress lines).
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.stats = RunStats()
        self.starts = StartStats()
        self.timeline = Timeline(self.clock, self.stats, lambda: 2, max_points=8,
                                 starts=self.starts)
        self.timeline.start()

    def second(self, started: int, dropped: int = 0, lag: float = 0.001) -> None:
        """
        One second of starts: ``started`` started with ``lag``, then
        ``dropped`` dropped.
        """
        for _ in range(started):
            self.starts.plan()
            self.starts.start(lag)
        for _ in range(dropped):
            self.starts.plan()
            self.starts.drop()
        self.clock.advance(1.0)

    def assertClose(self, value: float | None, expected: float) -> None:
        """
        Within the staging's 0.1 %, below (staged values are rounded down).
        """
        assert value is not None
        self.assertLessEqual(value, expected)
        self.assertGreaterEqual(value, expected * (1 - 1 / 1024))

    def test_ticks_count_dropped_starts(self) -> None:
        """
        Each tick tells the live line the dropped starts so far; a closed
        model's ticks say None.
        """
        ticks: list[Tick] = []
        self.timeline.on_tick(ticks.append)
        self.second(started=5, dropped=3)
        self.second(started=5, dropped=4)
        self.assertEqual([t.dropped_starts for t in ticks], [3, 7])
        closed = Timeline(self.clock, RunStats(), lambda: 1)
        closed_ticks: list[Tick] = []
        closed.on_tick(closed_ticks.append)
        closed.start()
        self.clock.advance(1.0)
        self.assertEqual([t.dropped_starts for t in closed_ticks], [None])

    def test_closed_model_has_no_starts(self) -> None:
        """
        Without start figures the timeline has no start columns and its
        data no ``starts`` key.
        """
        timeline = Timeline(self.clock, RunStats(), lambda: 1)
        timeline.start()
        self.clock.advance(2.0)
        self.assertIsNone(timeline.starts)
        self.assertNotIn("starts", timeline.to_dict())

    def test_dropped_start_lands_in_its_bucket(self) -> None:
        """
        Each point counts the starts planned, started and dropped in its
        own second: drops made in the third second (and half a second into
        the fourth) are counted there, not before, not after.
        """
        self.second(10)
        self.second(10)
        self.second(4, dropped=6)
        self.starts.plan()
        self.starts.drop()
        self.clock.advance(0.5)
        self.timeline.stop()
        data = self.timeline.to_dict()
        self.assertEqual(data["end"], [1.0, 2.0, 3.0, 3.5])
        self.assertEqual(data["starts"]["planned"], [10, 10, 10, 1])
        self.assertEqual(data["starts"]["started"], [10, 10, 4, 0])
        self.assertEqual(data["starts"]["dropped"], [0, 0, 6, 1])
        self.assertEqual(data["duration"], [1.0, 1.0, 1.0, 0.5])

    def test_lag_percentiles_per_bucket(self) -> None:
        """
        The lag of the starts of one second, 1 ms to 100 ms, gives that
        point p50 50 ms, p99 99 ms and max 100 ms (within 0.1 %); the next
        second's lags are its own (2 ms), and a second with only dropped
        starts has no lag (None).
        """
        for ms in range(1, 101):
            self.starts.plan()
            self.starts.start(ms / 1000)
        self.clock.advance(1.0)
        self.second(50, lag=0.002)
        self.second(0, dropped=5)
        lag = self.timeline.to_dict()["starts"]["lag"]
        self.assertClose(lag["p50"][0], 0.050)
        self.assertClose(lag["p99"][0], 0.099)
        self.assertClose(lag["max"][0], 0.100)
        for column in ("p50", "p99", "max"):
            self.assertClose(lag[column][1], 0.002)
            self.assertIsNone(lag[column][2])

    def test_progress_and_summary_reads_take_nothing(self) -> None:
        """
        The progress lines' take_interval and the summary's figures read
        the same StartStats: the timeline still gets every start and lag,
        and its totals are the summary's.
        """
        for _ in range(3):
            self.starts.plan()
            self.starts.start(0.004)
        self.starts.take_interval()
        self.starts.plan()
        self.starts.drop()
        figures = self.starts.figures()
        self.clock.advance(1.0)
        starts = self.timeline.to_dict()["starts"]
        self.assertEqual((starts["planned"], starts["started"], starts["dropped"]),
                         ([4], [3], [1]))
        self.assertEqual((figures.planned, figures.started, figures.dropped), (4, 3, 1))
        self.assertClose(starts["lag"]["max"][0], 0.004)
        self.assertEqual(self.starts.take_interval().planned, 1)

    def test_stop_keeps_the_last_drops(self) -> None:
        """
        Starts dropped at the stop, with no time gone since the last tick
        and no transaction, still make a last point: the timeline's totals
        equal the summary's.
        """
        self.second(5, dropped=2)
        self.starts.plan()
        self.starts.drop(3)  # given, then the stop kept them from starting
        self.timeline.stop()
        starts = self.timeline.to_dict()["starts"]
        figures = self.starts.figures()
        self.assertEqual(sum(starts["dropped"]), figures.dropped)
        self.assertEqual(sum(starts["planned"]), figures.planned)
        self.assertEqual(starts["dropped"], [2, 3])

    def test_merged_points_bounded(self) -> None:
        """
        Past max_points the start columns merge with the others: counts
        add up, a merged max is the larger one, a merged p50 the mean
        weighted by the starts, and the columns stay within points *
        (5 + 4 + 6) * 8 bytes.
        """
        for i in range(40):
            self.second(10 if i % 2 else 30, dropped=i % 3, lag=0.001 if i % 2 else 0.003)
        self.assertLessEqual(len(self.timeline), 8)
        self.assertGreaterEqual(self.timeline.width, 4)
        self.timeline.stop()
        data = self.timeline.to_dict()
        figures = self.starts.figures()
        self.assertEqual(sum(data["starts"]["planned"]), figures.planned)
        self.assertEqual(sum(data["starts"]["started"]), figures.started)
        self.assertEqual(sum(data["starts"]["dropped"]), figures.dropped)
        for value in data["starts"]["lag"]["max"]:
            self.assertClose(value, 0.003)
        # The first 8 s were 1 s points (30 starts at 3 ms, then 10 at
        # 1 ms), merged: the mean weighted by the starts, 2.5 ms. Points made
        # 2 s wide or wider hold both seconds: their exact p50 is 3 ms.
        p50 = data["starts"]["lag"]["p50"]
        self.assertEqual(data["end"], [8.0, 16.0, 24.0, 32.0, 40.0])
        self.assertLess(abs(p50[0] - 0.0025), 0.0025 * 0.002)
        for value in p50[1:]:
            self.assertClose(value, 0.003)
        bound = 8 * (5 + 4 + 6) * 8
        self.assertLessEqual(self.timeline.nbytes(), bound)
