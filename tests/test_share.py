"""
Tests for :mod:`octtwisted._core.share` (one turret's load split over
processes) and for the start schedules that make a share of the load: the
split's arithmetic, then, for each kind of schedule, ``N`` processes (each
its own schedule on its own ``task.Clock``, the clocks moved identically)
against one process making the whole load, on the times each cannon
comes in, each transaction starts and each start is planned.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.config import TurretConfig, parse_config
from octtwisted._core.share import LoadShare
from octtwisted._firing.profile import Profile
from octtwisted._firing.schedule_choice import schedule_for
from octtwisted._stats.starts import StartStats

HERE = Path(__file__).absolute()


def make_config(cannons: int, **keys: Any) -> TurretConfig:
    raw = {"name": "t", "cannons": cannons, "rampup": 0, "script": HERE.name, **keys}
    return parse_config(raw, HERE, standalone=True)


class PlannedStarts(StartStats):
    """
    The start figures, and the planned time of each start that a cannon
    began, read back from its lag (actual start minus planned).

    The clock starts at 0, so the schedule's lag is ``now - planned`` and
    ``now - lag`` gives ``planned`` back exactly while ``now`` is within a
    factor 2 of it (Sterbenz): with clock steps under 1 ms, a start is
    made at most one step after its planned time (or up to the 0.5 ms of
    ``arrival.EARLY`` before it), so it is.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        #: the planned time of each start given and begun, in order
        self.times: list[float] = []

    def start(self, lag: float) -> None:
        super().start(lag)
        self.times.append(self._clock.seconds() - lag)


class Process:
    """
    One process of a split turret as its start schedule sees it: its own
    ``Clock``, the schedule :func:`schedule_for` makes for its share, and
    cannons that behave as a run's do: before each transaction a cannon
    asks the schedule (``hold``) and waits if told to, then fires one
    transaction of ``transaction`` seconds (0: it ends at once; None: it
    never ends).
    """

    def __init__(self, config: TurretConfig, share: LoadShare | None, transaction: float | None) -> None:
        self.clock = Clock()
        self.share = share
        self.transaction = transaction
        #: (time, global index) of each cannon brought in
        self.brought_in: list[tuple[float, int]] = []
        #: (time, global index) of each transaction's start
        self.fired: list[tuple[float, int]] = []
        #: open model: (planned time, global index) of each cannon's first start
        self.first_starts: list[tuple[float, int]] = []
        #: when on_done was called
        self.done_at: list[float] = []
        self.schedule = schedule_for(config, self.clock, self._bring_in, self._done, share)
        self.starts: PlannedStarts | None = None
        if self.schedule.starts is not None:
            self.starts = self.schedule.starts = PlannedStarts(self.clock)
        self.schedule.start()

    def _done(self) -> None:
        self.done_at.append(self.clock.seconds())

    def _bring_in(self, index: int) -> None:
        self.brought_in.append((self.clock.seconds(), index))
        self._fire(index)
        if self.starts is not None and self.starts.times:
            self.first_starts.append((self.starts.times[-1], index))

    def _fire(self, index: int) -> None:
        while True:
            wait = self.schedule.hold(index) if self.schedule.holds else None
            if wait is not None:
                wait.addCallback(lambda _: self._fire(index))
                return
            self.fired.append((self.clock.seconds(), index))
            if self.transaction is None:
                return
            if self.transaction > 0:
                self.clock.callLater(self.transaction, self._fire, index)
                return


def bag(processes: Iterable[Process], attribute: str) -> Counter[Any]:
    """The multiset of the events ``attribute`` of all the ``processes``."""
    found: Counter[Any] = Counter()
    for process in processes:
        found.update(getattr(process, attribute))
    return found


class Split:
    """
    One process with the whole load and ``processes`` processes that
    split it, all with the same config, their clocks moved identically.
    """

    def __init__(self, config: TurretConfig, processes: int, transaction: float | None = 0.05) -> None:
        self.whole = Process(config, None, transaction)
        self.shares = [
            Process(config, share, transaction) for share in LoadShare.split(config.cannons, processes)
        ]
        self.everyone = [self.whole, *self.shares]

    def run(self, seconds: float, step: float) -> list[tuple[int, int]]:
        """
        Move every clock ``step`` by ``step`` for ``seconds``; return, after
        each step, the whole process's active cannons and the sum of the
        shares'.
        """
        active = []
        for _ in range(round(seconds / step)):
            for process in self.everyone:
                process.clock.advance(step)
            active.append(
                (self.whole.schedule.active(), sum(p.schedule.active() for p in self.shares))
            )
        return active


class LoadShareTests(SynchronousTestCase):
    def test_even_spread(self) -> None:
        """
        10 cannons over 3 processes: 4, 3 and 3, cannon i to process i % 3;
        the shares carry their index, the count and the total.
        """
        shares = LoadShare.split(10, 3)
        self.assertEqual(shares, (LoadShare(0, 3, 10), LoadShare(1, 3, 10), LoadShare(2, 3, 10)))
        self.assertEqual([s.cannons for s in shares], [4, 3, 3])
        self.assertEqual([i for i in range(10) if shares[1].owns_cannon(i)], [1, 4, 7])
        self.assertEqual([shares[0].cannon_index(j) for j in range(4)], [0, 3, 6, 9])

    def test_fewer_shares_than_processes(self) -> None:
        """
        With fewer cannons than processes, there is one share per cannon,
        each with one cannon: never a share without a cannon.
        """
        shares = LoadShare.split(3, 8)
        self.assertEqual(len(shares), 3)
        self.assertEqual([s.cannons for s in shares], [1, 1, 1])
        self.assertEqual([s.count for s in shares], [3, 3, 3])
        self.assertEqual(LoadShare.split(1, 16), (LoadShare.whole(1),))

    def test_whole(self) -> None:
        """
        The whole share owns every cannon and every start, in order.
        """
        whole = LoadShare.whole(5)
        self.assertEqual(whole, LoadShare(0, 1, 5))
        self.assertEqual(LoadShare.split(5, 1), (whole,))
        self.assertEqual(whole.cannons, 5)
        self.assertTrue(all(whole.owns_start(n) for n in range(20)))
        self.assertEqual([whole.next_start(n) for n in range(20)], list(range(20)))
        self.assertEqual([whole.cannons_below(x) for x in range(-1, 8)], [0, 0, 1, 2, 3, 4, 5, 5, 5])

    def test_starts_follow_cannons(self) -> None:
        """
        Start n belongs to the owner of cannon n % C: with 5 cannons over 2
        processes, the first owns starts 0, 2, 4, 5, 7, 9, 10...: 3 of
        every 5.
        """
        first, second = LoadShare.split(5, 2)
        self.assertEqual([n for n in range(15) if first.owns_start(n)], [0, 2, 4, 5, 7, 9, 10, 12, 14])
        self.assertEqual([n for n in range(15) if second.owns_start(n)], [1, 3, 6, 8, 11, 13])
        self.assertEqual([second.next_start(n) for n in range(10)], [1, 1, 3, 3, 6, 6, 6, 8, 8, 11])
        self.assertEqual(first.next_start(-3), 0)

    def test_invalid(self) -> None:
        """
        Fewer than 1 process or cannon, and shares that could not be, are
        ValueErrors; a cannon the share does not have is an IndexError.
        """
        for cannons, processes in [(0, 1), (5, 0), (-1, 3), (3, -2)]:
            self.assertRaises(ValueError, LoadShare.split, cannons, processes)
        self.assertRaises(ValueError, LoadShare.whole, 0)
        for index, count, total in [(3, 3, 5), (-1, 2, 5), (0, 0, 5), (0, 4, 3)]:
            self.assertRaises(ValueError, LoadShare, index, count, total)
        self.assertRaises(IndexError, LoadShare(1, 3, 10).cannon_index, 3)
        self.assertRaises(IndexError, LoadShare(1, 3, 10).cannon_index, -1)

    @given(st.integers(1, 200), st.integers(1, 16))
    def test_split_consistent(self, cannons: int, processes: int) -> None:
        """
        For any C and N: min(N, C) shares, each with one cannon at least,
        as evenly spread as can be (the first C % N one more); every cannon
        and every start owned by exactly one share (the one the rule
        names); and each share's cannons, cannons_below, cannon_index and
        next_start agree with what it owns, its starts being exactly its
        cannons' part of every C consecutive starts.
        """
        shares = LoadShare.split(cannons, processes)
        count = min(processes, cannons)
        self.assertEqual(len(shares), count)
        self.assertEqual([s.index for s in shares], list(range(count)))
        self.assertEqual(sum(s.cannons for s in shares), cannons)
        self.assertEqual(
            [s.cannons for s in shares],
            [cannons // count + (1 if k < cannons % count else 0) for k in range(count)],
        )
        for i in range(cannons):
            self.assertEqual([s.index for s in shares if s.owns_cannon(i)], [i % processes])
        for n in range(3 * cannons + 5):
            self.assertEqual([s.index for s in shares if s.owns_start(n)], [n % cannons % processes])
        for share in shares:
            self.assertGreaterEqual(share.cannons, 1)
            owned = [i for i in range(cannons) if share.owns_cannon(i)]
            self.assertFalse(share.owns_cannon(-1) or share.owns_cannon(cannons + share.index))
            self.assertEqual([share.cannon_index(j) for j in range(share.cannons)], owned)
            self.assertRaises(IndexError, share.cannon_index, share.cannons)
            for x in range(-2, cannons + 3):
                self.assertEqual(share.cannons_below(x), len([i for i in owned if i < x]))
            starts = [n for n in range(4 * cannons) if share.owns_start(n)]
            for n in range(3 * cannons):
                self.assertEqual(share.next_start(n), min(m for m in starts if m >= n))
            for begin in (0, 1, cannons // 2, cannons):
                window = range(begin, begin + cannons)
                self.assertEqual(len([n for n in window if share.owns_start(n)]), share.cannons)


class RampupShareTests(SynchronousTestCase):
    def assertSameRampup(self, cannons: int, rampup: float, processes: int) -> Split:
        split = Split(make_config(cannons, rampup=rampup), processes)
        split.run(rampup + 1, 1 / 8)
        self.assertEqual(bag(split.shares, "brought_in"), Counter(split.whole.brought_in))
        self.assertEqual(bag(split.shares, "fired"), Counter(split.whole.fired))
        self.assertEqual(len(split.whole.brought_in), cannons)
        for process in split.shares:
            share_cannons = process.schedule.target()
            self.assertEqual(process.schedule.started, share_cannons)
            self.assertEqual(process.schedule.active(), share_cannons)
            self.assertEqual(process.done_at, [max(t for t, _ in process.brought_in)])
        self.assertEqual(sum(p.schedule.target() for p in split.shares), cannons)
        return split

    def test_rampup(self) -> None:
        """
        With a rampup, each process brings in its own cannons i at
        i * rampup / C: together, every cannon at its time in one process
        (10 over 5 s, and 7 over 3 s, whose times are not on the clock's
        steps), each process's started and target its own cannons, and
        on_done when its last one came in.
        """
        for processes in (1, 2, 3, 4, 10, 16):
            split = self.assertSameRampup(10, 5, processes)
            self.assertEqual(split.whole.brought_in, [(i * 0.5, i) for i in range(10)])
            self.assertSameRampup(7, 3, processes)

    def test_no_rampup(self) -> None:
        """
        Without a rampup, each process brings in all of its cannons at
        once, at the start.
        """
        for processes in (2, 3, 5):
            split = self.assertSameRampup(5, 0, processes)
            self.assertEqual(split.whole.brought_in, [(0, i) for i in range(5)])

    def test_share_of_another_config(self) -> None:
        """
        A share of another number of cannons than the config's is refused.
        """
        for keys in ({}, {"stages": [{"duration": 1, "target": 3}]}, {"arrival_rate": 5}):
            self.assertRaises(
                ValueError, schedule_for, make_config(4, **keys), Clock(), print, print, LoadShare(0, 2, 5)
            )


class StagesShareTests(SynchronousTestCase):
    def test_up_and_down(self) -> None:
        """
        Closed-model stages going up, down, up and down to 0: every cannon
        comes in, and every transaction starts (cannons above the count
        held, then let go), at the same times in the processes as in one;
        the processes' active cannons add up to one process's after every
        step; each process brings in its cannons only (on_done once all
        are in) and aims at its part of the target.
        """
        stages = [
            {"duration": 1, "target": 10},
            {"duration": 1, "target": 2},
            {"duration": 1, "target": 7},
            {"duration": 1, "target": 0},
        ]
        for processes in (2, 3, 4, 10):
            split = Split(make_config(10, stages=stages), processes)
            active = split.run(2.5, 1 / 64)
            for whole, parts in active:
                self.assertEqual(parts, whole)
            self.assertEqual(max(whole for whole, _ in active), 10)
            self.assertAlmostEqual(sum(p.schedule.target() for p in split.shares), split.whole.schedule.target())
            active += split.run(2.5, 1 / 64)
            for whole, parts in active:
                self.assertEqual(parts, whole)
            self.assertEqual(active[-1], (0, 0))
            self.assertEqual(bag(split.shares, "brought_in"), Counter(split.whole.brought_in))
            self.assertEqual(bag(split.shares, "fired"), Counter(split.whole.fired))
            self.assertGreater(len(split.whole.fired), 200)
            for process in split.shares:
                share = process.share
                assert share is not None
                owned = [share.cannon_index(j) for j in range(share.cannons)]
                self.assertEqual(sorted(i for _, i in process.brought_in), owned)
                self.assertEqual(process.done_at, [max(t for t, _ in process.brought_in)])

    def test_never_all_in(self) -> None:
        """
        Stages up to 5 of 7 cannons over 3 processes: only cannons 0..4
        come in, each process's below 5, and a process whose cannons are
        not all in is not done.
        """
        split = Split(make_config(7, stages=[{"duration": 1, "target": 5}]), 3)
        for whole, parts in split.run(2, 1 / 64):
            self.assertEqual(parts, whole)
        self.assertEqual(bag(split.shares, "brought_in"), Counter(split.whole.brought_in))
        self.assertEqual([sorted(i for _, i in p.brought_in) for p in split.shares], [[0, 3], [1, 4], [2]])
        self.assertEqual([len(p.done_at) for p in split.everyone], [0, 0, 1, 0])


class ArrivalShareTests(SynchronousTestCase):
    #: clock steps under 1 ms: see PlannedStarts
    STEP = 1 / 1024

    def assertSamePlan(self, split: Split, profile: Profile) -> None:
        """
        The processes planned exactly the starts of one process, at the
        same times: start n at the profile's time for n.
        """
        whole = split.whole.starts
        assert whole is not None
        self.assertEqual(whole.dropped, 0)
        self.assertEqual(sorted(whole.times), [profile.time_of_total(n) for n in range(whole.planned)])
        shares = [p.starts for p in split.shares]
        self.assertEqual(sum(s.planned for s in shares if s is not None), whole.planned)
        self.assertEqual(sum((Counter(s.times) for s in shares if s is not None), Counter()), Counter(whole.times))
        for process in split.shares:
            self.assertEqual(process.starts and process.starts.dropped, 0)

    def test_ramped(self) -> None:
        """
        A ramped rate (0 to 300/s over 2 s, 10 cannons) with cannons that
        take every start: the processes plan the starts of one process,
        each at its time in one process, none dropped.
        """
        config = make_config(10, arrival_rate=300, rampup=2)
        for processes in (2, 3, 4, 7, 10):
            split = Split(config, processes, transaction=0)
            split.run(3, self.STEP)
            self.assertSamePlan(split, Profile.ramp(300, 2))
            self.assertGreater(split.whole.starts and split.whole.starts.planned, 500)

    def test_stages_with_a_pause(self) -> None:
        """
        Rate stages up, down to 0, 0 for a second, up again and down to 0:
        the processes plan every start one process plans, at the same
        times, none during the pause, and all of them, no more, once the
        rate is 0 for good.
        """
        stages = [(1.0, 300.0), (0.5, 0.0), (1.0, 0.0), (1.0, 120.0), (1.0, 0.0)]
        config = make_config(
            10, arrival_rate=50, stages=[{"duration": d, "target": t} for d, t in stages]
        )
        profile = Profile(stages, initial=50)
        for processes in (2, 3, 6):
            split = Split(config, processes, transaction=0)
            split.run(5, self.STEP)
            self.assertSamePlan(split, profile)
            whole = split.whole.starts
            assert whole is not None
            self.assertEqual(whole.planned, round(profile.total(4.5)) + 1)
            self.assertIsNone(profile.time_of_total(whole.planned))
            self.assertFalse([t for t in whole.times if 1.5 < t < 2.5])
            self.assertEqual([p.schedule.target() for p in split.everyone], [0] * (processes + 1))

    def test_saturated(self) -> None:
        """
        Transactions that never end: one process makes cannon i for start
        i, then drops every start; the processes make the same cannons
        for the same starts (the j-th of a process's first C starts is its
        j-th cannon), at the same planned times, and the processes'
        planned and dropped starts add up to one process's.
        """
        config = make_config(10, arrival_rate=64)
        for processes in (2, 3, 4):
            split = Split(config, processes, transaction=None)
            split.run(2, 1 / 64)
            whole = split.whole.starts
            assert whole is not None
            self.assertEqual(split.whole.first_starts, [(i / 64, i) for i in range(10)])
            self.assertEqual(bag(split.shares, "first_starts"), Counter(split.whole.first_starts))
            self.assertEqual(bag(split.shares, "brought_in"), Counter(split.whole.brought_in))
            shares = [p.starts for p in split.shares]
            self.assertEqual(sum(s.planned for s in shares if s is not None), whole.planned)
            self.assertEqual(sum(s.dropped for s in shares if s is not None), whole.dropped)
            self.assertEqual(whole.dropped, whole.planned - 10)
            for process in split.shares:
                self.assertEqual(process.schedule.active(), process.schedule.started)

    def test_constant_rate_in_proportion(self) -> None:
        """
        At a constant rate (64/s, 10 cannons over 3 processes: 4, 3 and 3),
        each process plans exactly its cannons' part of the starts (640
        planned by 9.98 s: 256, 192 and 192) and aims at that part of the
        rate; the parts add up to one process's planned starts.
        """
        split = Split(make_config(10, arrival_rate=64), 3, transaction=0)
        split.run(639 / 64, 1 / 64)
        planned = [p.starts.planned for p in split.everyone if p.starts is not None]
        self.assertEqual(planned, [640, 256, 192, 192])
        for process, rate in zip(split.everyone, [64, 25.6, 19.2, 19.2]):
            self.assertAlmostEqual(process.schedule.target(), rate)
        self.assertEqual([len(p.brought_in) for p in split.everyone], [1, 1, 1, 1])
