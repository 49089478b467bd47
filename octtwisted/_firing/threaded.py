"""
A cannon whose script blocks: it owns a thread and loops there.

As in the reference turret, the cannon's thread makes the transaction,
calls ``setup``, the timed ``run`` and ``tear_down``, and builds each
result. The cannon stays a ``LoopingCall`` on the reactor: one iteration
hands its thread a *burst* of transactions (up to :data:`THREAD_BURST`, for
at most :data:`THREAD_BURST_SECONDS`), and the burst's results come back in
one batch through a :class:`Mailbox`, which wakes the reactor once for the
batches of every cannon that finished meanwhile. So the reactor round trip
is paid once per burst, not once per step.

Between bursts the reactor applies backpressure and pacing (a paced cannon
runs bursts of one). ``transaction_timeout`` and the stop timeout *claim*
the transaction in the thread: the reactor reports it (``timeout after
Xs``, or cancelled) and the thread, when its step returns at last, drops
its own result. A cannon whose step never returns is left behind at the
stop timeout; its thread is a daemon and does not keep the process alive.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.deferreds import when_fired
from octtwisted._core.messages import Result
from octtwisted._firing.cannon import RETRY_TRANSACTION_AFTER, ReportResult
from octtwisted._firing.thread_side import (
    MAKING,
    RETRY,
    RUN,
    SETUP,
    THREAD_BURST,
    THREAD_BURST_SECONDS,
    ThreadSide,
)
from octtwisted._firing.threads import Mailbox, Worker

#: The cannons' logger. (Not a class attribute: there Twisted's Logger
#: would rename itself after the class.)
_LOG = logs.logger(logs.CANNON)


__all__ = ["ThreadedCannon", "THREAD_BURST", "THREAD_BURST_SECONDS"]


class ThreadedCannon(ThreadSide):
    """
    One virtual user of a blocking script (see the module docstring).

    The parameters are those of :class:`~octtwisted._firing.cannon.Cannon`,
    plus ``worker`` (the cannon's own thread) and ``mailbox``;
    ``on_misuse`` is told the error text of a misused step, and
    ``on_left_behind`` is called when the cannon gives up on its thread.
    """

    def __init__(
        self,
        *,
        index: int,
        turret_name: str,
        make_transaction: Callable[[], Any],
        worker: Worker,
        mailbox: Mailbox,
        clocks: Clocks,
        report: ReportResult,
        started_at: float,
        pacing: float = 0.0,
        transaction_timeout: float | None = None,
        on_crash: Callable[[Failure], None] | None = None,
        throttle: Callable[[], Deferred[None] | None] | None = None,
        on_misuse: Callable[[str], None] | None = None,
        on_left_behind: Callable[[], None] | None = None,
    ) -> None:
        self.index = index
        self._turret_name = turret_name
        self._make_transaction = make_transaction
        self._worker = worker
        self._mailbox = mailbox
        self._clocks = clocks
        self._report = report
        self._started_at = started_at
        self._pacing = pacing
        self._timeout = transaction_timeout
        self._on_crash = on_crash
        self._throttle = throttle
        self._on_misuse = on_misuse
        self._on_left_behind = on_left_behind
        self._loop = LoopingCall(self._fire)
        self._loop.clock = clocks.reactor
        self._finished: Deferred[None] | None = None
        self._burst_done: Deferred[None] | None = None
        self._idle_wait: Deferred[None] | None = None
        self._timeout_call: IDelayedCall | None = None
        self._abandoned = False
        # Shared with the thread. The thread writes the transaction's
        # times and stage; _current (the transaction in a step, 0 between
        # transactions) and _claimed (the one the reactor reported itself)
        # change under _lock.
        self._lock = threading.Lock()
        self._stop_asked = False
        self._seq = 0
        self._current = 0
        self._claimed = 0
        self._stage = MAKING
        self._began = 0.0
        self._epoch = 0.0
        self._run_began = 0.0
        # The thread's own.
        self._transaction: Any = None
        self._setup: Callable[[], Any] | None = None
        self._tear_down: Callable[[], Any] | None = None
        #: transactions reported by this cannon
        self.fired = 0

    @property
    def running(self) -> bool:
        return self._loop.running

    @property
    def started(self) -> bool:
        return self._finished is not None

    def start(self) -> None:
        if self._finished is not None:
            raise RuntimeError(f"cannon {self.index} started twice")
        finished = self._loop.start(0, now=True)
        self._finished = finished.addCallbacks(lambda _: None, self._crashed)
        self._finished.addBoth(self._close_worker)

    def stop(self) -> Deferred[None]:
        """
        Stop firing: the thread ends its burst after the transaction it is
        in. Fires when that burst has come back (or was given up on).
        """
        if self._finished is None:
            return succeed(None)
        self._stop_asked = True
        if self._loop.running:
            self._loop.stop()
        if self._idle_wait is not None:
            self._idle_wait.cancel()
        return when_fired(self._finished)

    def cancel_in_flight(self, reason: str) -> None:
        """
        The stop timeout: report the transaction the thread is in as
        cancelled with ``reason`` and stop waiting for the thread.
        """
        done = self._burst_done
        if done is None:
            return
        stage = MAKING
        with self._lock:
            seq = self._current
            mine = seq != 0 and self._claimed != seq
            if mine:
                self._claimed = seq
                stage = self._stage
        if seq == 0:
            # Between transactions: the burst is about to come back.
            return
        if mine:
            self._report_claimed(stage, "setup: " + reason if stage == SETUP else reason)
        self._abandoned = True
        if self._on_left_behind is not None:
            self._on_left_behind()
        self._end_burst(done)

    # The reactor's side.

    def _crashed(self, failure: Failure) -> None:
        if self._on_crash is not None:
            self._on_crash(failure)
        else:
            _LOG.failure(
                "cannon {index} crashed (turret bug)", failure=failure, index=self.index
            )

    def _close_worker(self, _: object) -> None:
        self._worker.close()

    def _fire(self) -> Deferred[None]:
        """
        One LoopingCall iteration: a burst in the cannon's thread.
        """
        if self._throttle is not None:
            hold = self._throttle()
            if hold is not None:
                self._idle_wait = hold
                return hold.addBoth(self._idle_over)
        done: Deferred[None] = Deferred()
        self._burst_done = done
        if self._timeout is not None:
            self._timeout_call = self._clocks.reactor.callLater(self._timeout, self._check_timeout)
        self._worker.submit(self._burst)
        return done

    def _landed(self, results: list[Result], outcome: object) -> None:
        """
        A burst came back (from the Mailbox).
        """
        if self._abandoned:
            return
        report = self._report
        for result in results:
            self.fired += 1
            report(result)
        done = self._burst_done
        if done is None:
            return
        if isinstance(outcome, Failure):
            self._burst_done = None
            self._cancel_timeout()
            done.errback(outcome)
            return
        if isinstance(outcome, str) and outcome not in (RETRY, ""):
            if self._on_misuse is not None:
                self._on_misuse(outcome)
        wait = 0.0
        if self._loop.running:
            if outcome == RETRY:
                wait = RETRY_TRANSACTION_AFTER
            elif self._pacing > 0:
                wait = self._pacing - (self._clocks.monotonic() - self._began)
        if wait > 0:
            self._cancel_timeout()
            self._burst_done = None
            self._idle(wait).addBoth(lambda _: done.callback(None))
            return
        self._end_burst(done)

    def _end_burst(self, done: Deferred[None]) -> None:
        self._burst_done = None
        self._cancel_timeout()
        done.callback(None)

    def _cancel_timeout(self) -> None:
        call, self._timeout_call = self._timeout_call, None
        if call is not None and call.active():
            call.cancel()

    def _check_timeout(self) -> None:
        """
        ``transaction_timeout`` seconds into a burst: report a ``run`` that
        has taken longer, else look again when the current one would.
        """
        self._timeout_call = None
        timeout = self._timeout
        assert timeout is not None
        now = self._clocks.monotonic()
        with self._lock:
            seq = self._current
            in_run = seq != 0 and self._claimed != seq and self._stage == RUN
            late = in_run and now - self._run_began >= timeout
            if late:
                self._claimed = seq
        if late:
            self._report_claimed(RUN, f"timeout after {timeout:g}s")
            again = timeout
        elif in_run:
            again = max(0.0, self._run_began + timeout - now)
        else:
            again = timeout
        if self._burst_done is not None:
            self._timeout_call = self._clocks.reactor.callLater(again, self._check_timeout)

    def _report_claimed(self, stage: str, error: str) -> None:
        """
        Report the transaction in the thread, claimed from it in ``stage``,
        with ``error`` (its custom timers are not read: the thread may
        still write them).
        """
        now = self._clocks.monotonic()
        run_time = now - self._run_began if stage == RUN else 0.0
        self.fired += 1
        self._report(
            Result(
                turret_name=self._turret_name,
                elapsed=self._began - self._started_at,
                epoch=self._epoch,
                scriptrun_time=run_time,
                error=error,
                custom_timers={},
            )
        )

    def _idle(self, seconds: float) -> Deferred[None]:
        self._idle_wait = deferLater(self._clocks.reactor, seconds)
        return self._idle_wait.addBoth(self._idle_over)

    def _idle_over(self, result: object) -> None:
        self._idle_wait = None
        if isinstance(result, Failure):
            result.trap(CancelledError)
