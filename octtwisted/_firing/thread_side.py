"""
What runs in a blocking script's cannon thread: bursts of transactions,
each made, set up, run (timed), torn down and turned into a result there.

:class:`ThreadSide` is the thread's half of
:class:`~octtwisted._firing.threaded.ThreadedCannon`; the attributes it
shares with the reactor's half are described there.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core.clocks import Clocks
from octtwisted._core.messages import Result
from octtwisted._firing.errortext import describe_error
from octtwisted._firing.outcome import _step_or_none, clean_timers
from octtwisted._firing.threads import Mailbox

#: Most transactions one burst runs in the cannon's thread ...
THREAD_BURST = 256
#: ... and the longest it goes on starting new ones, in seconds.
THREAD_BURST_SECONDS = 0.01

#: What a step in a thread was doing (for cancelled results).
MAKING, SETUP, RUN, TEAR_DOWN = "Transaction()", "setup", "run", "tear_down"

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


class ThreadSide:
    """
    The cannon's thread: :meth:`_burst` is the work it is handed.
    """

    _clocks: Clocks
    _mailbox: Mailbox
    _make_transaction: Callable[[], Any]
    _turret_name: str
    _started_at: float
    _pacing: float
    _timeout: float | None
    _lock: threading.Lock
    _stop_asked: bool
    _seq: int
    _current: int
    _claimed: int
    _stage: str
    _began: float
    _epoch: float
    _run_began: float
    _transaction: Any
    _setup: Callable[[], Any] | None
    _tear_down: Callable[[], Any] | None

    def _burst(self) -> None:
        """
        (The cannon's thread.) Transactions back to back, then post them.
        """
        try:
            results, outcome = self._run_burst()
        except BaseException:
            results, outcome = [], Failure()
        self._mailbox.post(self, results, outcome)  # type: ignore[arg-type]  # the cannon is the recipient

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

