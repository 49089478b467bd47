"""
The open workload model and load stages, with ``task.Clock``: the load
profile's arithmetic, planned start times, the rate ramp, stages in both
models, dropping when every cannon is busy, conservation of starts, and a
stop in the middle of a stage; the config keys and their errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase

from octtwisted import Transaction
from octtwisted._core.config import ConfigError, parse_config
from octtwisted._firing.lifecycle import State
from octtwisted._firing.profile import Profile
from octtwisted._stats.table import format_table
from octtwisted.testing import make_turret

HERE = Path(__file__).absolute()


class NearTests(SynchronousTestCase):
    def assertNear(self, first: float, second: float, delta: float) -> None:
        self.assertLessEqual(abs(first - second), delta, f"{first} is not within {delta} of {second}")


def waiting(clock: Clock, seconds: float | list[float]) -> type:
    """
    A Transaction whose run waits ``seconds`` on ``clock`` (or the next of
    a list, one per transaction of the class).
    """
    times = seconds if isinstance(seconds, list) else None

    class Waiting(Transaction):
        def run(self) -> Deferred[None]:
            wait = times.pop(0) if times else seconds
            return deferLater(clock, wait, lambda: None)  # type: ignore[arg-type]

    return Waiting


class ProfileTests(SynchronousTestCase):
    def test_constant_rate_evenly_spaced(self) -> None:
        """
        At a constant rate, start n is planned at n / rate.
        """
        profile = Profile.ramp(200, 0)
        for n in (0, 1, 2, 1000, 123_456):
            self.assertAlmostEqual(profile.time_of_total(n), n / 200)

    def test_ramp_then_hold(self) -> None:
        """
        A rampup from 0 to r over R plans r*R/2 starts during the ramp,
        with the rate growing linearly, then one every 1/r.
        """
        profile = Profile.ramp(100, 10)
        self.assertAlmostEqual(profile.total(10), 500)
        self.assertAlmostEqual(profile.time_of_total(500), 10)
        self.assertAlmostEqual(profile.time_of_total(125), 5)
        self.assertAlmostEqual(profile.time_of_total(600), 11)
        self.assertAlmostEqual(profile.value(2.5), 25)

    def test_stages_rate(self) -> None:
        """
        Stages of rates: linear within each from the previous target,
        the first from the initial rate; the last target holds.
        """
        profile = Profile([(10, 2000), (5, 0)], initial=100)
        self.assertAlmostEqual(profile.total(10), 10_500)
        self.assertAlmostEqual(profile.value(5), 1050)
        self.assertAlmostEqual(profile.total(15), 10_500 + 5000)
        self.assertIsNone(profile.time_of_total(15_501))
        for n in (1, 777, 10_499, 12_000, 15_499):
            t = profile.time_of_total(n)
            assert t is not None
            self.assertAlmostEqual(profile.total(t), n, places=6)

    def test_count_changes(self) -> None:
        """
        The count of cannons steps at each whole value: up every 10 ms from
        0 to 1000 over 10 s, then down every 1/90 s to 100, then holds.
        """
        profile = Profile([(10, 1000), (10, 100)])
        t, seen = 0.0, []
        while (change := profile.next_count_change(t)) is not None:
            seen.append(profile.count(change))
            self.assertGreater(change, t)
            t = change
        self.assertEqual(seen, list(range(1, 1001)) + list(range(999, 99, -1)))
        self.assertAlmostEqual(profile.next_count_change(0.5) or 0, 0.51)


class ConfigTests(SynchronousTestCase):
    def parse(self, **keys: Any) -> Any:
        raw = {"name": "t", "cannons": 10, "rampup": 0, "script": HERE.name, **keys}
        return parse_config(raw, HERE, standalone=True)

    def test_valid(self) -> None:
        """
        arrival_rate and stages are read as numbers; a non-zero rampup
        with stages is named in a warning.
        """
        config = self.parse(arrival_rate=50, stages=[{"duration": 2, "target": 100}], rampup=3)
        self.assertEqual(config.arrival_rate, 50.0)
        self.assertEqual([(s.duration, s.target) for s in config.stages], [(2.0, 100.0)])
        self.assertIn("'rampup' (3s) is not used with 'stages'", config.warnings[0])

    def test_invalid(self) -> None:
        """
        Every invalid value is a one-line config error naming the key.
        """
        bad = [
            ({"arrival_rate": 0}, "arrival_rate"),
            ({"arrival_rate": -3}, "arrival_rate"),
            ({"arrival_rate": "fast"}, "arrival_rate"),
            ({"arrival_rate": True}, "arrival_rate"),
            ({"arrival_rate": 10**400}, "arrival_rate"),
            ({"stages": []}, "'stages'"),
            ({"stages": {"duration": 1}}, "'stages'"),
            ({"stages": [{"target": 1}]}, "no 'duration'"),
            ({"stages": [{"duration": 1}]}, "no 'target'"),
            ({"stages": [{"duration": 0, "target": 1}]}, "'duration'"),
            ({"stages": [{"duration": "1", "target": 1}]}, "'duration'"),
            ({"stages": [{"duration": 1, "target": -1}]}, "'target'"),
            ({"stages": [{"duration": 1, "target": 2.5}]}, "whole number"),
            ({"stages": [{"duration": 1, "target": 11}]}, "more than 'cannons'"),
            ({"stages": [{"duration": 1, "target": 1, "ramp": 2}]}, "unknown keys"),
            ({"stages": [5]}, "stage 1"),
        ]
        for keys, words in bad:
            with self.assertRaises(ConfigError, msg=keys) as caught:
                self.parse(**keys)
            message = str(caught.exception)
            self.assertIn(words, message)
            self.assertNotIn("\n", message)
            self.assertLess(len(message), 300)


class OpenModelTests(NearTests):
    def setUp(self) -> None:
        self.clock = Clock()

    def run_for(self, seconds: float, step: float = 0.001) -> None:
        self.clock.pump([step] * round(seconds / step))

    def test_rate_whatever_the_response_time(self) -> None:
        """
        At 200/s with 10 ms or with 200 ms transactions (enough cannons),
        results come at 200/s, starts are 5 ms apart, and none is dropped.
        """
        for wait in (0.01, 0.2):
            clock = self.clock = Clock()
            made = make_turret(waiting(clock, wait), clock=clock, cannons=100, arrival_rate=200)
            made.orders.order("start", "open fire")
            self.run_for(2)
            epochs = sorted(r["epoch"] for r in made.sink.results)
            done = len(made.sink.results)
            self.assertNear(done, 400 - wait * 200, 2)
            # Start k is planned at k * 5 ms; the test clock moves in 1 ms
            # steps, so each starts within a step of its time, never drifting.
            for k, epoch in enumerate(epochs):
                self.assertNear(epoch - k * 0.005, 0.0005, 0.0006)
            starts = made.turret.run.stats and made.turret.run._schedule.starts
            self.assertEqual(starts.dropped, 0)

    def test_cannons_made_as_needed(self) -> None:
        """
        Cannons are made only when no idle one can take a start: 10 ms
        transactions at 200/s need 2 or 3, not the 100 allowed.
        """
        made = make_turret(waiting(self.clock, 0.01), clock=self.clock, cannons=100, arrival_rate=200)
        made.orders.order("start", "open fire")
        self.run_for(1)
        self.assertLessEqual(len(made.turret.run.cannons), 3)

    def test_too_few_cannons_drop_and_conserve(self) -> None:
        """
        100/s of 1 s transactions on 20 cannons: about 20 complete per
        second, about 80 starts per second are dropped (never queued nor
        delayed), and started + dropped == planned exactly, at the end too.
        """
        made = make_turret(waiting(self.clock, 1.0), clock=self.clock, cannons=20, arrival_rate=100)
        made.orders.order("start", "open fire")
        self.run_for(10, step=0.01)
        starts = made.turret.run._schedule.starts
        self.assertEqual(starts.started + starts.dropped, starts.planned)
        self.assertNear(starts.planned, 1000, 2)
        self.assertNear(starts.started, 200, 2)
        self.assertNear(len(made.sink.results), 180, 2)
        made.orders.order("stop", None)
        self.run_for(2, step=0.01)
        summary = made.turret.last_summary
        figures = summary.starts
        self.assertEqual(figures.started + figures.dropped, figures.planned)
        self.assertEqual(summary.transactions, figures.started)
        text = format_table(summary)
        self.assertIn("Dropped starts", text)
        self.assertIn("Start lag", text)
        self.assertEqual(summary.to_dict()["starts"]["planned"], figures.planned)

    def test_lag_measured(self) -> None:
        """
        The lag of each start is its actual start minus its planned time:
        with a clock that moves in 3 ms steps and a start planned every
        5 ms, lags are between 0 and 3 ms and the planned times do not
        drift.
        """
        made = make_turret(waiting(self.clock, 0.001), clock=self.clock, cannons=5, arrival_rate=200)
        made.orders.order("start", "open fire")
        self.run_for(3, step=0.003)
        made.orders.order("stop", None)
        self.run_for(1, step=0.003)
        figures = made.turret.last_summary.starts
        self.assertNear(figures.planned, 600, 2)
        self.assertLessEqual(figures.lag.max, 0.0031)
        self.assertEqual(figures.dropped, 0)

    def test_rampup_ramps_the_rate(self) -> None:
        """
        With rampup, the rate grows linearly from 0: 100/s over 10 s plans
        125 starts in the first 5 s and 500 by 10 s.
        """
        made = make_turret(waiting(self.clock, 0.001), clock=self.clock, cannons=10, arrival_rate=100, rampup=10)
        made.orders.order("start", "open fire")
        self.run_for(5, step=0.01)
        starts = made.turret.run._schedule.starts
        self.assertNear(starts.planned, 125, 1)
        self.run_for(5, step=0.01)
        self.assertNear(starts.planned, 500, 1)

    def test_rate_stages_then_hold(self) -> None:
        """
        Rate stages: from arrival_rate to each target linearly, then the
        last target holds until stop; a stop in the middle of a stage ends
        the run with every start accounted for.
        """
        made = make_turret(
            waiting(self.clock, 0.001), clock=self.clock, cannons=10, arrival_rate=100,
            stages=[{"duration": 2, "target": 300}, {"duration": 2, "target": 100}],
        )
        made.orders.order("start", "open fire")
        self.run_for(2, step=0.005)
        starts = made.turret.run._schedule.starts
        self.assertNear(starts.planned, 400, 2)
        self.run_for(1, step=0.005)
        self.assertNear(starts.planned, 400 + 250, 2)
        made.orders.order("stop", None)
        self.run_for(1, step=0.005)
        figures = made.turret.last_summary.starts
        self.assertEqual(figures.started + figures.dropped, figures.planned)
        self.assertIs(made.turret.state, State.READY)


class ClosedStagesTests(NearTests):
    def setUp(self) -> None:
        self.clock = Clock()

    def test_cannons_follow_stages(self) -> None:
        """
        The active cannons follow the stages: up from 0 to 10 over 1 s,
        down to 2 over 1 s (those above finish their transaction, then
        wait), and 2 keep firing after the last stage.
        """
        made = make_turret(
            waiting(self.clock, 0.05), clock=self.clock, cannons=10,
            stages=[{"duration": 1, "target": 10}, {"duration": 1, "target": 2}],
        )
        made.orders.order("start", "open fire")
        run = made.turret.run
        seen = []
        for _ in range(40):
            self.clock.advance(0.05)
            seen.append(run.active_cannons())
        self.assertEqual(seen[0], 0)  # at 0.05 s: floor(0.5) = 0
        self.assertEqual(seen[4], 2)  # at 0.25 s
        self.assertEqual(seen[9], 5)  # at 0.5 s
        self.assertEqual(seen[19], 10)  # at 1 s
        self.assertEqual(seen[29], 6)  # at 1.5 s: 10 - 8 * 0.5
        self.assertEqual(seen[-1], 2)  # at 2 s, and held
        self.assertEqual(max(seen), 10)
        before = len(made.sink.results)
        self.clock.pump([0.05] * 20)
        # 2 cannons, 50 ms transactions: 40 results a second.
        self.assertNear(len(made.sink.results) - before, 40, 2)
        self.assertEqual(len(run.cannons), 10)

    def test_stop_in_the_middle_of_a_stage(self) -> None:
        """
        A stop during a ramp stops every cannon, held or firing, within the
        stop timeout, and the turret is READY again.
        """
        made = make_turret(
            waiting(self.clock, 0.05), clock=self.clock, cannons=10,
            stages=[{"duration": 1, "target": 10}, {"duration": 1, "target": 0}],
        )
        made.orders.order("start", "open fire")
        self.clock.pump([0.05] * 30)
        run = made.turret.run
        self.assertEqual(run.active_cannons(), 5)  # at 1.5 s: 10 - 10 * 0.5
        made.orders.order("stop", None)
        self.clock.pump([0.05] * 4)
        self.assertIs(made.turret.state, State.READY)
        self.assertFalse(any(cannon.running for cannon in run.cannons))
        self.assertEqual(made.turret.last_summary.transactions, len(made.sink.results))
        self.assertIsNone(made.turret.last_summary.starts)
