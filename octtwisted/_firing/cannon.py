"""
A cannon: one virtual user, firing its transaction in a loop.

Each cannon is one ``LoopingCall``. For every transaction it calls the
transaction's ``setup()``, the timed ``run()`` and ``tear_down()``, and
reports exactly one :class:`~octtwisted._core.messages.Result`. A script error,
raised or in a Deferred, becomes an error result: an iteration never fails,
so the LoopingCall never stops on its own.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.deferreds import when_fired
from octtwisted._core.messages import Result
from octtwisted._firing.nextturn import NextTurn
from octtwisted._firing.errortext import describe_error
from octtwisted._firing.outcome import _step_or_none, clean_timers

#: The cannons' logger. (Not a class attribute: there Twisted's Logger
#: would rename itself after the class.)
_LOG = logs.logger(logs.CANNON)


#: A cannon whose transactions end at once (no Deferred) runs up to this
#: many of them in one turn of the reactor, for at most BURST_SECONDS,
#: instead of going back to the reactor after each one.
BURST = 32
BURST_SECONDS = 0.001

#: Seconds before a cannon tries again to make its Transaction, after the
#: constructor raised.
RETRY_TRANSACTION_AFTER = 1.0

#: Called with the result of every transaction.
ReportResult = Callable[[Result], None]


class StepCaller(Protocol):
    def call(self, step: Callable[[], Any]) -> Any:
        """
        Call ``step`` on the reactor; return its value, or a Deferred of
        it. May raise.
        """


class Cannon:
    """
    One virtual user.

    :param make_transaction: creates this cannon's transaction (called once,
        or again on the next iteration if it raised).
    :param steps: calls the transaction's steps on the reactor.
    :param report: receives every result.
    :param started_at: the turret's start of firing, on ``clocks.monotonic``.
    :param pacing: seconds; a transaction starts at most once per period.
    :param transaction_timeout: seconds ``run`` may take, or None.
    :param on_crash: called if the cannon's own machinery fails (a bug).
    :param throttle: called before each transaction; a Deferred it returns
        holds the cannon back until it fires (backpressure).
    :param next_turn: where the cannon queues the start of its next
        transaction (shared by a run's cannons; one of its own if None).
    """

    def __init__(
        self,
        *,
        index: int,
        turret_name: str,
        make_transaction: Callable[[], Any],
        steps: StepCaller,
        clocks: Clocks,
        report: ReportResult,
        started_at: float,
        pacing: float = 0.0,
        transaction_timeout: float | None = None,
        on_crash: Callable[[Failure], None] | None = None,
        throttle: Callable[[], Deferred[None] | None] | None = None,
        next_turn: NextTurn | None = None,
    ) -> None:
        self.index = index
        self._turret_name = turret_name
        self._make_transaction = make_transaction
        self._steps = steps
        self._clocks = clocks
        self._report = report
        self._started_at = started_at
        self._pacing = pacing
        self._timeout = transaction_timeout
        self._on_crash = on_crash
        self._throttle = throttle
        self._next_turn = next_turn if next_turn is not None else NextTurn(clocks.reactor)
        self._transaction: Any = None
        self._setup: Callable[[], Any] | None = None
        self._tear_down_step: Callable[[], Any] | None = None
        self._loop = LoopingCall(self._fire)
        self._loop.clock = clocks.reactor
        self._finished: Deferred[None] | None = None
        self._in_flight: Deferred[Any] | None = None
        self._idle_wait: Deferred[None] | None = None
        self._cancel_reason: str | None = None
        # The iteration under way.
        self._epoch = 0.0
        self._elapsed = 0.0
        self._began = 0.0
        self._run_began = 0.0
        self._run_time = 0.0
        self._error = ""
        #: transactions reported by this cannon
        self.fired = 0

    @property
    def running(self) -> bool:
        return self._loop.running

    @property
    def started(self) -> bool:
        return self._finished is not None

    def start(self) -> None:
        """
        Start firing (the first transaction starts now).
        """
        if self._finished is not None:
            raise RuntimeError(f"cannon {self.index} started twice")
        finished = self._loop.start(0, now=True)
        self._finished = finished.addCallbacks(lambda _: None, self._crashed)

    def stop(self) -> Deferred[None]:
        """
        Stop firing. The transaction in flight may finish.

        :return: fires when the cannon has ended its last transaction.
        """
        if self._finished is None:
            return defer.succeed(None)
        if self._loop.running:
            self._loop.stop()
        if self._idle_wait is not None:
            self._idle_wait.cancel()
        return when_fired(self._finished)

    def cancel_in_flight(self, reason: str) -> None:
        """
        Cancel the step in flight (after the stop timeout): the transaction
        is reported with the error ``reason``, tear_down is called but not
        waited for.
        """
        self._cancel_reason = reason
        if self._in_flight is not None:
            self._in_flight.cancel()

    # The iteration: each step's result is either a plain value (the next
    # step follows at once) or a Deferred (the next step follows it).

    def _crashed(self, failure: Failure) -> None:
        if self._on_crash is not None:
            self._on_crash(failure)
        else:
            _LOG.failure(
                "cannon {index} crashed (turret bug)", failure=failure, index=self.index
            )

    def _fire(self) -> Deferred[None] | None:
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
        if self._throttle is not None:
            hold = self._throttle()
            if hold is not None:
                # Wait, then fire at once, in the turn that released the
                # hold (a start schedule's planned time), checking again.
                self._idle_wait = hold
                return hold.addBoth(self._idle_over).addCallback(self._held_over)
        clocks = self._clocks
        self._began = clocks.monotonic()
        self._epoch = clocks.wall()
        self._elapsed = self._began - self._started_at
        self._run_time = 0.0
        self._error = ""
        if self._transaction is None:
            try:
                self._adopt(self._make_transaction())
            except Exception as e:
                self._error = "Transaction() failed: " + describe_error(e)
                waiting = self._finish(None)
                if waiting is None and self._loop.running:
                    # Do not turn a broken constructor into an error flood.
                    waiting = self._idle(RETRY_TRANSACTION_AFTER)
                return waiting
        try:
            self._transaction.custom_timers = {}
        except Exception:
            pass
        first: Deferred[None] | None
        if self._setup is None:
            first = self._run(None)
        else:
            first = self._step(self._setup, self._run, self._setup_failed)
        return first

    def _adopt(self, transaction: Any) -> None:
        """
        Take a new transaction; note the steps that do nothing, so they are
        not called (a blocking script saves a trip to its thread pool).
        """
        self._transaction = transaction
        self._setup = _step_or_none(transaction, "setup")
        self._tear_down_step = _step_or_none(transaction, "tear_down")

    def _step(
        self,
        step: Callable[[], Any],
        next_: Callable[[Any], Any],
        failed: Callable[[Failure], Any],
        timeout: float | None = None,
    ) -> Any:
        try:
            result = self._steps.call(step)
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
            self._transaction.run, self._run_done, self._run_failed, self._timeout
        )

    def _run_done(self, _: object) -> Any:
        self._run_time = self._clocks.monotonic() - self._run_began
        return self._tear_down()

    def _run_failed(self, failure: Failure) -> Any:
        self._run_time = self._clocks.monotonic() - self._run_began
        self._error = self._describe(failure)
        return self._tear_down()

    def _tear_down(self) -> Any:
        if self._cancel_reason is not None:
            # Stopping after the stop timeout: do not wait for tear_down.
            try:
                result = None
                if self._tear_down_step is not None:
                    result = self._steps.call(self._tear_down_step)
            except Exception:
                result = None
            if isinstance(result, Deferred):
                result.addErrback(lambda _: None)
            return self._finish(None)
        if self._tear_down_step is None:
            return self._finish(None)
        return self._step(self._tear_down_step, self._finish, self._tear_down_failed)

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
        try:
            timers, timer_error = clean_timers(
                getattr(self._transaction, "custom_timers", {})
            )
        except Exception as e:
            timers, timer_error = {}, "custom_timers: " + describe_error(e)
        error = self._error
        if timer_error:
            error = f"{error}; {timer_error}" if error else timer_error
        self.fired += 1
        self._report(
            Result(
                turret_name=self._turret_name,
                elapsed=self._elapsed,
                epoch=self._epoch,
                scriptrun_time=self._run_time,
                error=error,
                custom_timers=timers,
            )
        )
        if self._pacing > 0 and self._loop.running:
            wait = self._pacing - (self._clocks.monotonic() - self._began)
            if wait > 0:
                return self._idle(wait)
        return None

    def _idle(self, seconds: float) -> Deferred[None]:
        """
        Wait ``seconds`` before the next transaction (cut short by stop).
        """
        self._idle_wait = deferLater(self._clocks.reactor, seconds)
        return self._idle_wait.addBoth(self._idle_over)

    def _held_over(self, _: object) -> Deferred[None] | None:
        if not self._loop.running:
            return None
        return self._burst()

    def _idle_over(self, result: object) -> None:
        self._idle_wait = None
        if isinstance(result, Failure):
            result.trap(CancelledError)
