"""
The barrel of a cannon whose steps run on the reactor thread (a script
that may return Deferreds or coroutines): :class:`ReactorBarrel`.

For every transaction it calls ``setup()``, the timed ``run()`` and
``tear_down()``; each step's result is either a plain value (the next step
follows at once) or a Deferred (the next step follows it; a coroutine
becomes one). A script error, raised or in a Deferred, becomes an error
result.
"""

from __future__ import annotations

from types import CoroutineType
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from octtwisted._firing.cannon import RETRY_TRANSACTION_AFTER, Cannon, CannonSettings
from octtwisted._firing.errortext import describe_error
from octtwisted._firing.nextturn import NextTurn
from octtwisted._firing.outcome import NO_TRANSACTION, TransactionSteps, result_of, steps_of

#: A cannon whose transactions end at once (no Deferred) runs up to this
#: many of them in one turn of the reactor, for at most BURST_SECONDS,
#: instead of going back to the reactor after each one.
BURST = 32
BURST_SECONDS = 0.001


def reactor_cannon(settings: CannonSettings, next_turn: NextTurn) -> Cannon:
    """
    A cannon whose steps run on the reactor; it queues the start of its
    next transaction on ``next_turn`` (shared by a run's cannons).
    """
    return Cannon(settings, lambda cannon: ReactorBarrel(cannon, next_turn))


def _ignore(_: object) -> None:
    pass


class ReactorBarrel:
    """
    Runs a cannon's transactions on the reactor (see the module
    docstring); made by its :class:`~octtwisted._firing.cannon.Cannon`.

    The settings the hot path reads on every transaction are bound here
    once; so is the state of the transaction under way.
    """

    # Slots: read and written on every step of the hot path.
    __slots__ = (
        "_cannon",
        "_settings",
        "_loop",
        "_clocks",
        "_report",
        "_throttle",
        "_next_turn",
        "_steps",
        "_in_flight",
        "_cancel_reason",
        "_began",
        "_epoch",
        "_run_began",
        "_run_time",
        "_error",
        "fired",
    )

    def __init__(self, cannon: Cannon, next_turn: NextTurn) -> None:
        settings = cannon.settings
        self._cannon = cannon
        self._settings = settings
        self._loop = cannon.loop
        self._clocks = settings.clocks
        self._report = settings.report
        self._throttle = settings.throttle
        self._next_turn = next_turn
        self._steps: TransactionSteps = NO_TRANSACTION
        self._in_flight: Deferred[Any] | None = None
        self._cancel_reason: str | None = None
        # The transaction under way.
        self._began = 0.0
        self._epoch = 0.0
        self._run_began = 0.0
        self._run_time = 0.0
        self._error = ""
        #: transactions reported
        self.fired = 0

    def stopping(self) -> None:
        """
        Nothing to do: the transaction in flight ends as it will.
        """

    def ended(self) -> None:
        """
        Nothing to close.
        """

    def cancel_in_flight(self, reason: str) -> None:
        """
        Cancel the step in flight: the transaction is reported with the
        error ``reason``, tear_down is called but not waited for.
        """
        self._cancel_reason = reason
        if self._in_flight is not None:
            self._in_flight.cancel()

    def fire(self) -> Deferred[None] | None:
        """
        One LoopingCall iteration: a burst (see :meth:`_burst`). If it ends
        waiting for a transaction, the iteration goes on with the next burst
        in the turn after that transaction ends (see :mod:`.nextturn`): the
        LoopingCall waits for ``going_on``, which fires when a burst ends
        without waiting, or the loop is stopped, or the cannon's machinery
        fails.
        """
        waiting = self._burst()
        if waiting is None:
            return None
        going_on: Deferred[None] = Deferred()
        waiting.addBoth(self._ended, going_on)
        return going_on

    def _ended(self, result: object, going_on: Deferred[None]) -> None:
        if isinstance(result, Failure):
            going_on.errback(result)
        elif not self._loop.running:
            going_on.callback(None)
        else:
            self._next_turn.call(self._go_on, going_on)

    def _go_on(self, going_on: Deferred[None]) -> None:
        if not self._loop.running:
            going_on.callback(None)
            return
        try:
            waiting = self._burst()
        except BaseException:
            going_on.errback(Failure())
            return
        if waiting is None:
            going_on.callback(None)
        else:
            waiting.addBoth(self._ended, going_on)

    def _burst(self) -> Deferred[None] | None:
        """
        Transactions back to back while they end at once (see BURST), or
        until one returns a Deferred to wait for.
        """
        monotonic = self._clocks.monotonic
        loop = self._loop
        deadline = monotonic() + BURST_SECONDS
        for _ in range(BURST):
            waiting = self._fire_one()
            if waiting is not None or not loop.running or monotonic() >= deadline:
                return waiting
        return None

    def _fire_one(self) -> Deferred[None] | None:
        throttle = self._throttle
        if throttle is not None:
            hold = throttle()
            if hold is not None:
                # Wait, then fire at once, in the turn that released the
                # hold (a start schedule's planned time), checking again.
                return self._cannon.hold(hold).addCallback(self._held_over)
        clocks = self._clocks
        self._began = clocks.monotonic()
        self._epoch = clocks.wall()
        self._run_time = 0.0
        self._error = ""
        steps = self._steps
        if steps is NO_TRANSACTION:
            try:
                steps = self._steps = steps_of(self._settings.make_transaction())
            except Exception as e:
                self._error = "Transaction() failed: " + describe_error(e)
                waiting = self._finish(None)
                if waiting is None and self._loop.running:
                    # Do not turn a broken constructor into an error flood.
                    waiting = self._cannon.idle(RETRY_TRANSACTION_AFTER)
                return waiting
        try:
            steps.transaction.custom_timers = {}
        except Exception:
            pass
        first: Deferred[None] | None
        if steps.setup is None:
            first = self._run(None)
        else:
            first = self._step(steps.setup, self._run, self._setup_failed)
        return first

    def _step(
        self,
        step: Callable[[], Any],
        next_: Callable[[Any], Any],
        failed: Callable[[Failure], Any],
        timeout: float | None = None,
    ) -> Any:
        """
        Call ``step``, the one place a step is called; then ``next_`` with
        its value, or ``failed`` with its failure, at once or when its
        Deferred fires.
        """
        try:
            result = step()
            if type(result) is CoroutineType:
                result = Deferred.fromCoroutine(result)
        except (Exception, SystemExit):
            return failed(Failure())
        if isinstance(result, Deferred):
            if timeout is not None:
                result.addTimeout(timeout, self._clocks.reactor, self._timed_out)
            self._in_flight = result
            return result.addCallbacks(next_, failed)
        return next_(result)

    def _timed_out(self, result: Any, timeout: float) -> Any:
        # A timeout error, whatever the step did with its cancellation.
        text = f"timeout after {timeout:g}s"
        if not (isinstance(result, Failure) and result.check(CancelledError)):
            text += " (the script went on after it was cancelled)"
        return Failure(defer.TimeoutError(text))

    def _setup_failed(self, failure: Failure) -> Any:
        self._error = "setup: " + self._describe(failure)
        return self._tear_down()

    def _run(self, _: object) -> Any:
        self._run_began = self._clocks.monotonic()
        return self._step(
            self._steps.transaction.run,
            self._run_done,
            self._run_failed,
            self._settings.transaction_timeout,
        )

    def _run_done(self, _: object) -> Any:
        self._run_time = self._clocks.monotonic() - self._run_began
        return self._tear_down()

    def _run_failed(self, failure: Failure) -> Any:
        self._run_time = self._clocks.monotonic() - self._run_began
        self._error = self._describe(failure)
        return self._tear_down()

    def _tear_down(self) -> Any:
        tear_down = self._steps.tear_down
        if self._cancel_reason is not None:
            # Stopping after the stop timeout: do not wait for tear_down.
            if tear_down is not None:
                self._step(tear_down, _ignore, _ignore)
            return self._finish(None)
        if tear_down is None:
            return self._finish(None)
        return self._step(tear_down, self._finish, self._tear_down_failed)

    def _tear_down_failed(self, failure: Failure) -> Any:
        if not self._error:
            self._error = "tear_down: " + self._describe(failure)
        return self._finish(None)

    def _describe(self, failure: Failure) -> str:
        if failure.check(CancelledError) and self._cancel_reason is not None:
            return self._cancel_reason
        return describe_error(failure)

    def _finish(self, _: object) -> Deferred[None] | None:
        self._in_flight = None
        self.fired += 1
        self._report(
            result_of(
                self._settings,
                self._steps.transaction,
                self._began,
                self._epoch,
                self._run_time,
                self._error,
            )
        )
        pacing = self._settings.pacing
        if pacing > 0 and self._loop.running:
            wait = pacing - (self._clocks.monotonic() - self._began)
            if wait > 0:
                return self._cannon.idle(wait)
        return None

    def _held_over(self, _: object) -> Deferred[None] | None:
        if not self._loop.running:
            return None
        return self._burst()
