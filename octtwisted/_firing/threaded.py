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

import inspect
import queue
import threading
from collections import deque
from typing import Any, Callable, Protocol

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.messages import Result
from octtwisted._firing.cannon import (
    RETRY_TRANSACTION_AFTER,
    ReportResult,
    _step_or_none,
    clean_timers,
    describe_error,
)

#: Most transactions one burst runs in the cannon's thread ...
THREAD_BURST = 256
#: ... and the longest it goes on starting new ones, in seconds.
THREAD_BURST_SECONDS = 0.01

#: What a step in a thread was doing (for cancelled results).
MAKING, SETUP, RUN, TEAR_DOWN = "Transaction()", "setup", "run", "tear_down"


class Worker(Protocol):
    """
    Runs work, one piece after another, in one thread of its own.
    """

    def submit(self, work: Callable[[], None]) -> None: ...

    def close(self) -> None: ...


class CannonThread:
    """
    A daemon thread that runs what it is given, in order, until closed.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[], None]) -> None:
        self._queue.put(work)

    def close(self) -> None:
        self._queue.put(None)

    def _main(self) -> None:
        get = self._queue.get
        while True:
            work = get()
            if work is None:
                return
            work()


class Reactorish(Protocol):
    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None: ...


class Mailbox:
    """
    Bursts' results, from any thread to the reactor: one reactor wake-up
    delivers every batch posted since the last one.
    """

    def __init__(self, reactor: Reactorish) -> None:
        self._reactor = reactor
        self._items: deque[tuple[ThreadedCannon, list[Result], object]] = deque()
        self._waking = False

    def post(self, cannon: "ThreadedCannon", results: list[Result], outcome: object) -> None:
        """
        (Any thread.) Hand ``cannon`` its burst's results and outcome.
        """
        self._items.append((cannon, results, outcome))
        if not self._waking:
            self._waking = True
            self._reactor.callFromThread(self._deliver)

    def _deliver(self) -> None:
        # Clear the flag first: a batch posted from now on wakes us again.
        self._waking = False
        items = self._items
        while items:
            cannon, results, outcome = items.popleft()
            cannon._landed(results, outcome)


#: A burst's outcome when the constructor failed: retry after a while.
RETRY = "retry"


def misuse(step: str, value: object) -> str:
    """
    The error text for a step in a thread that returned something only the
    reactor can wait for, or ``""``.
    """
    if isinstance(value, Deferred):
        what = "a Deferred"
    elif inspect.iscoroutine(value):
        value.close()
        what = "a coroutine (async def)"
    elif inspect.isawaitable(value):
        what = f"an awaitable ({type(value).__name__})"
    else:
        return ""
    return (
        f"TypeError: {step}() returned {what}, but this script's steps run in "
        "threads, where nothing waits for it: set blocking = False on the "
        'Transaction class (or "blocking": false in the config) to run them '
        "on the reactor"
    )


class ThreadedCannon:
    """
    One virtual user of a blocking script (see the module docstring).

    The parameters are those of :class:`~octtwisted._firing.cannon.Cannon`,
    plus ``worker`` (the cannon's own thread) and ``mailbox``;
    ``on_misuse`` is told the error text of a misused step, and
    ``on_left_behind`` is called when the cannon gives up on its thread.
    """

    log = logs.logger(logs.CANNON)

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
        done: Deferred[None] = Deferred()
        self._finished.addBoth(lambda r: (done.callback(None), r)[1])
        return done

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
            self.log.failure(
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

    # The thread's side.

    def _burst(self) -> None:
        """
        (The cannon's thread.) Transactions back to back, then post them.
        """
        try:
            results, outcome = self._run_burst()
        except BaseException:
            results, outcome = [], Failure()
        self._mailbox.post(self, results, outcome)

    def _run_burst(self) -> tuple[list[Result], object]:
        monotonic = self._clocks.monotonic
        limit = 1 if self._pacing > 0 else THREAD_BURST
        deadline = monotonic() + THREAD_BURST_SECONDS
        results: list[Result] = []
        append = results.append
        outcome: object = None
        for _ in range(limit):
            result, problem = self._one()
            if result is not None:
                append(result)
            if problem:
                outcome = problem
                if problem == RETRY:
                    break
            if self._stop_asked or monotonic() >= deadline:
                break
        return results, outcome

    def _one(self) -> tuple[Result | None, str]:
        """
        (The cannon's thread.) One transaction: its result (None if the
        reactor claimed it) and a problem to tell the reactor (RETRY, a
        misuse text, or ``""``).
        """
        clocks = self._clocks
        monotonic = clocks.monotonic
        self._seq += 1
        seq = self._seq
        began = self._began = monotonic()
        self._epoch = epoch = clocks.wall()
        self._stage = MAKING
        self._current = seq
        error = ""
        problem = ""
        run_time = 0.0
        transaction = self._transaction
        if transaction is None:
            try:
                transaction = self._adopt(self._make_transaction())
            except Exception as e:
                error = "Transaction() failed: " + describe_error(e)
                problem = RETRY
        if transaction is not None:
            try:
                transaction.custom_timers = {}
            except Exception:
                pass
            setup = self._setup
            if setup is not None:
                self._stage = SETUP
                try:
                    value = setup()
                    if value is not None:
                        error = problem = misuse("setup", value)
                        if error:
                            error = "setup: " + error
                except (Exception, SystemExit) as e:
                    error = "setup: " + describe_error(e)
            if not error:
                run_began = self._run_began = monotonic()
                self._stage = RUN
                try:
                    value = transaction.run()
                    run_time = monotonic() - run_began
                    if value is not None:
                        error = problem = misuse("run", value)
                except (Exception, SystemExit) as e:
                    run_time = monotonic() - run_began
                    error = describe_error(e)
                timeout = self._timeout
                if timeout is not None and run_time > timeout and not error:
                    error = f"timeout after {timeout:g}s"
            tear_down = self._tear_down
            if tear_down is not None:
                self._stage = TEAR_DOWN
                try:
                    value = tear_down()
                    if value is not None and not error:
                        error = problem = misuse("tear_down", value)
                        if error:
                            error = "tear_down: " + error
                except (Exception, SystemExit) as e:
                    if not error:
                        error = "tear_down: " + describe_error(e)
            try:
                timers, timer_error = clean_timers(getattr(transaction, "custom_timers", {}))
            except Exception as e:
                timers, timer_error = {}, "custom_timers: " + describe_error(e)
            if timer_error:
                error = f"{error}; {timer_error}" if error else timer_error
        else:
            timers = {}
        with self._lock:
            self._current = 0
            claimed = self._claimed == seq
        if claimed:
            return None, problem
        return (
            Result(
                turret_name=self._turret_name,
                elapsed=began - self._started_at,
                epoch=epoch,
                scriptrun_time=run_time,
                error=error,
                custom_timers=timers,
            ),
            problem,
        )

    def _adopt(self, transaction: Any) -> Any:
        self._transaction = transaction
        self._setup = _step_or_none(transaction, "setup")
        self._tear_down = _step_or_none(transaction, "tear_down")
        return transaction

