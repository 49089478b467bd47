"""
The turret's CPU: the sampler on a fake clock and a fake reader (shares,
peak, the one warning after 10 s above 90 %), the readers of this process
and of others through /proc, and the active-cannons peak the charts show.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._firing.fleetrun import WorkerTally
from octtwisted._stats import cpu
from octtwisted._stats.cpu import CPUSampler


class FakeCPU:
    """CPU seconds per pid, advanced by the test."""

    def __init__(self, *pids: int) -> None:
        self.used = {pid: 0.0 for pid in pids}

    def __call__(self) -> dict[int, float]:
        return dict(self.used)


def sampler(reader: FakeCPU) -> tuple[Clock, CPUSampler, list[dict[str, Any]]]:
    clock = Clock()
    events: list[dict[str, Any]] = []
    sampled = CPUSampler(clock, reader, log=Logger(observer=events.append))
    sampled.start()
    return clock, sampled, events


def run_for(clock: Clock, reader: FakeCPU, seconds: int, **shares: float) -> None:
    """``seconds`` of 1 s, each pid (``p<pid>``) using its share."""
    for _ in range(seconds):
        for name, share in shares.items():
            reader.used[int(name[1:])] += share
        clock.advance(1.0)


class SamplerTests(SynchronousTestCase):
    def test_shares_and_peak(self) -> None:
        """
        Each second's point is the busiest process's share of one core;
        the peak is the largest; a stopped sampler takes no more points.
        """
        reader = FakeCPU(1, 2)
        clock, sampled, events = sampler(reader)
        run_for(clock, reader, 3, p1=0.2, p2=0.5)
        run_for(clock, reader, 2, p1=0.7, p2=0.1)
        self.assertEqual(list(sampled.end), [1.0, 2.0, 3.0, 4.0, 5.0])
        self.assertEqual([round(v, 6) for v in sampled.busiest], [0.5, 0.5, 0.5, 0.7, 0.7])
        self.assertAlmostEqual(sampled.peak or 0.0, 0.7)
        sampled.stop()
        run_for(clock, reader, 3, p1=1.0)
        self.assertEqual(len(sampled.busiest), 5)
        self.assertEqual(events, [])
        self.assertEqual(sampled.to_dict()["peak"], sampled.peak)

    def test_warns_once_after_ten_seconds_above_90(self) -> None:
        """
        A process above 90 % of its core for 9 s, then below, brings no
        warning; for 10 s in a row, one warning naming it; and no more in
        that run however long it stays saturated.
        """
        reader = FakeCPU(1, 2)
        clock, sampled, events = sampler(reader)
        run_for(clock, reader, 9, p1=0.95, p2=0.1)
        run_for(clock, reader, 1, p1=0.5, p2=0.1)
        run_for(clock, reader, 9, p1=0.95, p2=0.1)
        self.assertEqual(events, [])
        self.assertFalse(sampled.warned)
        run_for(clock, reader, 1, p1=0.95, p2=0.1)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["pid"], 1)
        self.assertIn("the turret is saturated", events[0]["log_format"])
        run_for(clock, reader, 60, p1=1.0, p2=1.0)
        self.assertEqual(len(events), 1)
        self.assertTrue(sampled.warned)

    def test_a_worker_saturated(self) -> None:
        """
        With --processes, the busiest process counts: a worker at 100 %
        while the main process idles is warned about.
        """
        reader = FakeCPU(10, 11, 12)
        clock, sampled, events = sampler(reader)
        run_for(clock, reader, 10, p10=0.05, p11=0.4, p12=1.0)
        self.assertEqual([e["pid"] for e in events], [12])
        self.assertAlmostEqual(sampled.peak or 0.0, 1.0)

    def test_process_gone_or_new(self) -> None:
        """
        A process that disappears (a dead worker) or appears (its
        replacement) is measured only between two readings of it.
        """
        reader = FakeCPU(1, 2)
        clock, sampled, _ = sampler(reader)
        run_for(clock, reader, 1, p1=0.1, p2=0.3)
        del reader.used[2]
        reader.used[3] = 50.0  # a fresh worker, CPU used before we saw it
        run_for(clock, reader, 1, p1=0.1, p3=0.6)
        run_for(clock, reader, 1, p1=0.1, p3=0.6)
        self.assertEqual([round(v, 6) for v in sampled.busiest], [0.3, 0.1, 0.6])

    def test_bounded(self) -> None:
        """
        Past MAX_SAMPLES, samples are merged two by two, keeping the larger.
        """
        self.patch(cpu, "MAX_SAMPLES", 10)
        reader = FakeCPU(1)
        clock, sampled, _ = sampler(reader)
        run_for(clock, reader, 9, p1=0.1)
        run_for(clock, reader, 1, p1=0.8)
        self.assertEqual(len(sampled.busiest), 5)
        self.assertEqual(list(sampled.end), [2.0, 4.0, 6.0, 8.0, 10.0])
        self.assertAlmostEqual(sampled.busiest[-1], 0.8)
        self.assertAlmostEqual(sampled.peak or 0.0, 0.8)


class ReaderTests(SynchronousTestCase):
    def test_own_cpu(self) -> None:
        """This process's CPU seconds grow as it works."""
        before = cpu.own_cpu()[os.getpid()]
        sum(i * i for i in range(300_000))
        self.assertGreater(cpu.own_cpu()[os.getpid()], before)

    def test_proc_cpu(self) -> None:
        """
        /proc/<pid>/stat gives a process's CPU seconds (close to os.times
        for this one); a process that is gone gives None, and is left out
        of processes_cpu's reading.
        """
        if not os.path.exists("/proc/self/stat"):
            self.skipTest("no /proc")
        mine = cpu.proc_cpu(os.getpid())
        assert mine is not None
        self.assertLess(abs(mine - cpu.own_cpu()[os.getpid()]), 0.1)
        self.assertIsNone(cpu.proc_cpu(2**22 + 12345))
        read = cpu.processes_cpu(lambda: [1, None, 2**22 + 12345])
        self.assertEqual(set(read()), {os.getpid(), 1})


class ActivePeakTests(SynchronousTestCase):
    def test_fleet_tally_peak(self) -> None:
        """
        The main process's active cannons per point are the most its
        workers' parts told at once since the last point, not the count
        at its end.
        """
        tally = WorkerTally(2, 0)
        tally.part(0, 10, 10)
        tally.part(1, 12, 12)
        tally.part(0, 1, 10)
        tally.part(1, 0, 12)
        self.assertEqual(tally.take_peak(), 22)
        self.assertEqual(tally.take_peak(), 1)

    def test_open_model_peak_in_flight(self) -> None:
        """
        In the open model a run's active_peak is the most transactions in
        flight at once since the last call: 50 ms transactions at 100/s
        start in bursts (the clock jumps 0.2 s), so the peak is 20 or more
        (at most the 30 cannons) though fewer than 10 are in flight at the end.
        """
        from octtwisted.testing import make_turret
        from tests.test_load import waiting

        clock = Clock()
        made = make_turret(waiting(clock, 0.05), clock=clock, cannons=30, arrival_rate=100)
        made.orders.order("start", "open fire")
        clock.pump([0.2] * 5)
        clock.pump([0.06])
        run = made.turret.run
        now = run.active_cannons()
        self.assertLess(now, 10)
        peak = run.active_peak()
        self.assertGreaterEqual(peak, 20)
        self.assertLessEqual(peak, 30)
        self.assertEqual(run.active_peak(), now)  # counted from the last call
