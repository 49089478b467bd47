"""
The small pieces of the firing layer on their own, with ``task.Clock``:
status answers, the HQ-loss watch, backpressure, the Deferred helpers and
the per-run object's bounded stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from octtwisted import Transaction
from octtwisted._core.clocks import Clocks
from octtwisted._core.config import parse_config
from octtwisted._core.deferreds import on_fired, when_fired
from octtwisted._firing.backpressure import Backpressure
from octtwisted._firing.gcpolicy import NoGCPolicy
from octtwisted._firing.hqwatch import HQLossWatch
from octtwisted._firing.lifecycle import Lifecycle, State
from octtwisted._firing.run import Run
from octtwisted._firing.status import STATUS_ANSWER_INTERVAL, StatusPublisher
from octtwisted._firing.steps import ReactorCannonFactory
from octtwisted._firing.stopping import CANCEL_GRACE
from octtwisted.testing import RecordingSink

HERE = Path(__file__).absolute()


def config(**keys: Any) -> Any:
    raw = {"name": "parts", "cannons": 2, "rampup": 0, "script": HERE.name}
    raw.update(keys)
    return parse_config(raw, HERE, standalone=True)


class DeferredHelperTests(SynchronousTestCase):
    def test_when_fired_leaves_the_result(self) -> None:
        """
        ``when_fired`` fires with None on a result or a failure, and the
        source keeps its result for its next callbacks.
        """
        source: Deferred[int] = Deferred()
        watcher = when_fired(source)
        self.assertNoResult(watcher)
        source.callback(7)
        self.assertIsNone(self.successResultOf(watcher))
        self.assertEqual(self.successResultOf(source), 7)
        failing = fail(ValueError("x"))
        self.assertIsNone(self.successResultOf(when_fired(failing)))
        self.failureResultOf(failing, ValueError)

    def test_on_fired_calls_and_passes_on(self) -> None:
        """
        ``on_fired`` calls its action once the source fires, and passes
        the result on.
        """
        calls = []
        d = on_fired(succeed("r"), lambda: calls.append(1))
        self.assertEqual((calls, self.successResultOf(d)), ([1], "r"))


class StatusPublisherTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = RecordingSink()
        self.lifecycle = Lifecycle(lambda old, new: self.status.state_changed(new))
        self.status = StatusPublisher(self.clock, self.sink, config(), "u-1", self.lifecycle)

    def test_requests_coalesced(self) -> None:
        """
        The first request is answered at once; the requests that follow
        within STATUS_ANSWER_INTERVAL get one answer at its end.
        """
        self.status.requested()
        self.assertEqual(len(self.sink.statuses), 1)
        for _ in range(50):
            self.status.requested()
        self.assertEqual(len(self.sink.statuses), 1)
        self.clock.advance(STATUS_ANSWER_INTERVAL)
        self.assertEqual(len(self.sink.statuses), 2)

    def test_heartbeat_while_ready_and_final_once(self) -> None:
        """
        While READY a status goes out every heartbeat; RUNNING stops the
        heartbeat; a final state is sent once and nothing after it.
        """
        self.lifecycle.move(State.READY)
        self.clock.pump([config().heartbeat_interval] * 2)
        self.assertEqual([s["status"] for s in self.sink.statuses], ["ready"] * 3)
        self.lifecycle.move(State.RUNNING)
        self.clock.advance(10)
        self.lifecycle.move(State.KILLING)
        self.lifecycle.move(State.KILLED)
        self.status.requested()
        self.status.connected()
        self.assertEqual(
            [s["status"] for s in self.sink.statuses], ["ready"] * 3 + ["Running", "Killed"]
        )
        self.assertEqual(
            sorted(self.sink.statuses[-1]), ["cannons", "rampup", "script", "status", "turret", "uuid"]
        )


class HQLossWatchTests(SynchronousTestCase):
    def test_gone_after_timeout_unless_back(self) -> None:
        """
        A loss while firing calls ``gone`` after the timeout, unless the HQ
        comes back first; a loss while not firing, or a timeout of 0, never.
        """
        clock = Clock()
        gone: list[int] = []
        firing = [True]
        watch = HQLossWatch(clock, 5, lambda: firing[0], lambda: gone.append(1))
        watch.lost()
        clock.advance(4)
        watch.back()
        clock.advance(10)
        self.assertEqual(gone, [])
        watch.lost()
        clock.advance(5)
        self.assertEqual(gone, [1])
        firing[0] = False
        watch.lost()
        clock.advance(10)
        off = HQLossWatch(clock, 0, lambda: True, lambda: gone.append(2))
        off.lost()
        clock.advance(100)
        self.assertEqual(gone, [1])


class FullSink(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.queued = 0
        self.room: list[tuple[int, Deferred[None]]] = []

    def pending(self) -> int:
        return self.queued

    def wait_for_room(self, below: int) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.room.append((below, d))
        return d


class BackpressureTests(SynchronousTestCase):
    def test_holds_at_limit_until_half(self) -> None:
        """
        Below the limit nothing waits; at it, every caller gets a Deferred
        and one wait for room below half the limit is asked for; all are
        released together.
        """
        sink = FullSink()
        pressure = Backpressure(sink, 10)
        sink.queued = 9
        self.assertIsNone(pressure.hold())
        sink.queued = 10
        holds = [pressure.hold(), pressure.hold()]
        self.assertEqual([below for below, _ in sink.room], [5])
        for hold in holds:
            assert hold is not None
            self.assertNoResult(hold)
        sink.room[0][1].callback(None)
        for hold in holds:
            assert hold is not None
            self.successResultOf(hold)


class RunStopTests(SynchronousTestCase):
    def test_stop_bounded_by_timeout_and_grace(self) -> None:
        """
        A run whose transactions never end stops anyway: at the stop
        timeout they are cancelled (error results say so), and the stop
        fires at once; one stop serves every caller.
        """
        clock = Clock()
        sink = RecordingSink()

        class Never(Transaction):
            def run(self) -> Deferred[None]:
                return Deferred()

        run = Run(
            config=config(stop_timeout=2),
            transaction_class=Never,
            context={},
            steps=ReactorCannonFactory(),
            clocks=Clocks.fake(clock),
            sink=sink,
            gc=NoGCPolicy(),
            on_crash=lambda f: self.fail(f),
        )
        run.start()
        self.assertEqual(run.active_cannons(), 2)
        first, second = run.stop(), run.stop()
        clock.advance(1.9)
        self.assertNoResult(first)
        clock.advance(0.1)
        self.successResultOf(first)
        self.successResultOf(second)
        summary = run.close()
        self.assertEqual((summary.transactions, summary.errors), (2, 2))
        self.assertIn("cancelled: still running at the stop timeout (2s)", sink.results[0]["error"])

    def test_stop_gives_up_after_grace(self) -> None:
        """
        A transaction that ignores its cancellation is given up on after
        CANCEL_GRACE: the stop still fires.
        """
        clock = Clock()

        class Stubborn(Transaction):
            async def run(self) -> None:
                try:
                    await Deferred()
                except CancelledError:
                    await Deferred()  # swallows the cancel, waits for ever

        run = Run(
            config=config(stop_timeout=1, cannons=1),
            transaction_class=Stubborn,
            context={},
            steps=ReactorCannonFactory(),
            clocks=Clocks.fake(clock),
            sink=RecordingSink(),
            gc=NoGCPolicy(),
            on_crash=lambda f: self.fail(f),
        )
        run.start()
        stopped = run.stop()
        clock.advance(1)
        self.assertNoResult(stopped)
        clock.advance(CANCEL_GRACE)
        self.successResultOf(stopped)
        self.assertEqual(run.close().transactions, 0)
