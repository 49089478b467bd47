"""
The barrel of a cannon whose script blocks: the cannon owns a thread and
its transactions run there (:class:`ThreadBarrel` is the reactor's half,
:class:`~octtwisted._firing.thread_side.ThreadSide` the thread's).

As in the reference turret, the cannon's thread makes the transaction,
calls ``setup``, the timed ``run`` and ``tear_down``, and builds each
result. The cannon stays a ``LoopingCall`` on the reactor: one iteration
hands its thread a *burst* of transactions (up to :data:`THREAD_BURST`, for
at most :data:`THREAD_BURST_SECONDS`), and the burst's results come back in
one batch through a :class:`Mailbox` (or, when the reactor claims a step
of the burst, with the claim), which wakes the reactor once for the
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

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from octtwisted._core.messages import Result
from octtwisted._firing.cannon import RETRY_TRANSACTION_AFTER, Cannon, CannonSettings
from octtwisted._firing.outcome import result_of
from octtwisted._firing.thread_side import (
    RETRY,
    RUN,
    SETUP,
    THREAD_BURST,
    THREAD_BURST_SECONDS,
    Claimed,
    ThreadSide,
)
from octtwisted._firing.threads import Mailbox, Worker

__all__ = ["ThreadBarrel", "threaded_cannon", "THREAD_BURST", "THREAD_BURST_SECONDS"]


def threaded_cannon(
    settings: CannonSettings,
    worker: Worker,
    mailbox: Mailbox,
    on_misuse: Callable[[str], None] | None = None,
    on_left_behind: Callable[[], None] | None = None,
    on_no_thread: Callable[[str], None] | None = None,
) -> Cannon:
    """
    A cannon whose transactions run in ``worker``, its own thread (see
    :class:`ThreadBarrel` for the other parameters).
    """
    return Cannon(
        settings,
        lambda cannon: ThreadBarrel(cannon, worker, mailbox, on_misuse, on_left_behind, on_no_thread),
    )


class ThreadBarrel:
    """
    The reactor's half of a cannon whose transactions run in its own
    thread (see the module docstring).

    :param worker: the cannon's thread.
    :param mailbox: brings the bursts' results back to the reactor.
    :param on_misuse: told the error text of a misused step.
    :param on_left_behind: called when the cannon gives up on its thread.
    :param on_no_thread: told why, when the system would not start the
        cannon's thread. Such a cannon reports an error result (``cannot
        start the cannon's thread: ...``) and tries again
        :data:`RETRY_TRANSACTION_AFTER` seconds later.
    """

    # Slots: read on every burst.
    __slots__ = (
        "_cannon",
        "_settings",
        "_loop",
        "_clocks",
        "_worker",
        "_thread",
        "_on_misuse",
        "_on_left_behind",
        "_on_no_thread",
        "_burst_done",
        "_timeout_call",
        "_abandoned",
        "fired",
    )

    def __init__(
        self,
        cannon: Cannon,
        worker: Worker,
        mailbox: Mailbox,
        on_misuse: Callable[[str], None] | None = None,
        on_left_behind: Callable[[], None] | None = None,
        on_no_thread: Callable[[str], None] | None = None,
    ) -> None:
        settings = cannon.settings
        self._cannon = cannon
        self._settings = settings
        self._loop = cannon.loop
        self._clocks = settings.clocks
        self._worker = worker
        self._thread = ThreadSide(settings, mailbox, self.landed)
        self._on_misuse = on_misuse
        self._on_left_behind = on_left_behind
        self._on_no_thread = on_no_thread
        self._burst_done: Deferred[None] | None = None
        self._timeout_call: IDelayedCall | None = None
        self._abandoned = False
        #: transactions reported
        self.fired = 0

    def fire(self) -> Deferred[None]:
        """
        One LoopingCall iteration: a burst in the cannon's thread.
        """
        throttle = self._settings.throttle
        if throttle is not None:
            hold = throttle()
            if hold is not None:
                return self._cannon.hold(hold)
        refused = self._worker.start()
        if refused:
            return self._no_thread(refused)
        done: Deferred[None] = Deferred()
        self._burst_done = done
        timeout = self._settings.transaction_timeout
        if timeout is not None:
            self._timeout_call = self._clocks.reactor.callLater(timeout, self._check_timeout)
        self._worker.submit(self._thread.burst)
        return done

    def _no_thread(self, reason: str) -> Deferred[None]:
        """
        The system would not start the cannon's thread: an error result,
        and another try a little later.
        """
        clocks = self._clocks
        self.fired += 1
        self._settings.report(result_of(
            self._settings, None, clocks.monotonic(), clocks.wall(), 0.0,
            f"cannot start the cannon's thread: {reason}",
        ))
        if self._on_no_thread is not None:
            self._on_no_thread(reason)
        return self._cannon.idle(RETRY_TRANSACTION_AFTER)

    def stopping(self) -> None:
        """
        The thread ends its burst after the transaction it is in.
        """
        self._thread.stop_asked = True

    def ended(self) -> None:
        """
        Close the cannon's thread.
        """
        self._worker.close()

    def cancel_in_flight(self, reason: str) -> None:
        """
        The stop timeout: report the transaction the thread is in as
        cancelled with ``reason`` and stop waiting for the thread.
        """
        done = self._burst_done
        if done is None:
            return
        in_one, claimed, finished = self._thread.claim()
        if not in_one:
            # Between transactions: the burst is about to come back.
            return
        self._report_finished(finished)
        if claimed is not None:
            self._report_claimed(claimed, "setup: " + reason if claimed.stage == SETUP else reason)
        self._abandoned = True
        if self._on_left_behind is not None:
            self._on_left_behind()
        self._end_burst(done)

    def landed(self, results: list[Result], outcome: object) -> None:
        """
        (The reactor thread.) A burst came back, through the Mailbox.
        """
        if self._abandoned:
            return
        report = self._settings.report
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
            elif self._settings.pacing > 0:
                wait = self._settings.pacing - (self._clocks.monotonic() - self._thread.began)
        if wait > 0:
            self._cancel_timeout()
            self._burst_done = None
            self._cannon.idle(wait).addBoth(lambda _: done.callback(None))
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
        timeout = self._settings.transaction_timeout
        assert timeout is not None
        late, again, finished = self._thread.claim_late_run(self._clocks.monotonic(), timeout)
        self._report_finished(finished)
        if late is not None:
            self._report_claimed(late, f"timeout after {timeout:g}s")
        if self._burst_done is not None:
            self._timeout_call = self._clocks.reactor.callLater(again, self._check_timeout)

    def _report_finished(self, results: list[Result]) -> None:
        """
        Report the results a burst had finished when the reactor claimed
        the transaction after them.
        """
        report = self._settings.report
        for result in results:
            self.fired += 1
            report(result)

    def _report_claimed(self, claimed: Claimed, error: str) -> None:
        """
        Report the transaction claimed from the thread with ``error`` (its
        custom timers are not read: the thread may still write them).
        """
        now = self._clocks.monotonic()
        run_time = now - claimed.run_began if claimed.stage == RUN else 0.0
        self.fired += 1
        self._settings.report(
            result_of(self._settings, None, claimed.began, claimed.epoch, run_time, error)
        )
