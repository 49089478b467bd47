"""
What runs in a blocking script's cannon thread: bursts of transactions,
each made, set up, run (timed), torn down and turned into a result there.

:class:`ThreadSide` is the thread's half of a threaded cannon (the
reactor's half is :class:`~octtwisted._firing.threaded.ThreadBarrel`). It
also keeps the handover between the two: which transaction the thread is
in, and in which step; the reactor may *claim* that transaction (at the
transaction timeout or the stop timeout) and report it itself, and the
thread then drops its own result. A claim also takes the results of the
transactions the burst has finished so far: they are reported at once, not
held back by a step that may never return.
"""

from __future__ import annotations

import inspect
import threading

import attrs
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core.messages import Result
from octtwisted._core.requesttimers import take_request_timers
from octtwisted._firing.cannon import CannonSettings
from octtwisted._firing.errortext import describe_error
from octtwisted._firing.outcome import NO_TRANSACTION, TransactionSteps, result_of, steps_of
from octtwisted._firing.threads import Landed, Mailbox

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


@attrs.frozen
class Claimed:
    """
    The transaction the thread was in when the reactor claimed it.

    :ivar stage: the step it was in (MAKING, SETUP, RUN or TEAR_DOWN).
    :ivar began: when it began (monotonic clock).
    :ivar epoch: when it began (wall clock).
    :ivar run_began: when its ``run`` began, if ``stage`` is RUN.
    """

    stage: str
    began: float
    epoch: float
    run_began: float


class ThreadSide:
    """
    The cannon's thread: :meth:`burst` is the work it is handed; the
    reactor claims a transaction with :meth:`claim` or
    :meth:`claim_late_run`.

    :param landed: where each burst's results go, through ``mailbox``.
    """

    # Slots: read and written on every transaction.
    __slots__ = (
        "_settings",
        "_clocks",
        "_mailbox",
        "_landed",
        "_lock",
        "_seq",
        "_current",
        "_claimed",
        "_finished",
        "_stage",
        "_epoch",
        "_run_began",
        "began",
        "stop_asked",
        "_steps",
    )

    def __init__(self, settings: CannonSettings, mailbox: Mailbox, landed: Landed) -> None:
        self._settings = settings
        self._clocks = settings.clocks
        self._mailbox = mailbox
        self._landed = landed
        # Shared with the reactor. The thread writes the transaction's
        # times and stage; _current (the transaction in a step, 0 between
        # transactions), _claimed (the one the reactor reported itself) and
        # _finished (the burst's results not yet taken) change under _lock.
        self._lock = threading.Lock()
        self._seq = 0
        self._current = 0
        self._claimed = 0
        self._finished: list[Result] = []
        self._stage = MAKING
        self._epoch = 0.0
        self._run_began = 0.0
        #: when the last transaction began (monotonic clock); the reactor
        #: reads it once the burst has come back
        self.began = 0.0
        #: set by the reactor: end the burst after the transaction under way
        self.stop_asked = False
        # The thread's own.
        self._steps: TransactionSteps = NO_TRANSACTION

    # The reactor's side of the handover.

    def claim(self) -> tuple[bool, Claimed | None, list[Result]]:
        """
        (The reactor thread.) Claim the transaction the thread is in.

        :return: whether the thread is in a transaction; what was claimed
            (None if the reactor had claimed it already); and, if it is in
            one, the results of the transactions the burst finished before
            it (the reactor reports them: the burst's own batch will not
            have them).
        """
        with self._lock:
            seq = self._current
            if seq == 0:
                return False, None, []
            finished, self._finished = self._finished, []
            if self._claimed == seq:
                return True, None, finished
            self._claimed = seq
            return True, Claimed(self._stage, self.began, self._epoch, self._run_began), finished

    def claim_late_run(self, now: float, timeout: float) -> tuple[Claimed | None, float, list[Result]]:
        """
        (The reactor thread.) Claim the transaction the thread is in if
        its ``run`` has taken ``timeout`` seconds or more by ``now``.

        :return: what was claimed (or None); in how many seconds to look
            again; and, with a claim, the results the burst finished
            before it (as :meth:`claim`).
        """
        with self._lock:
            seq = self._current
            if seq == 0 or self._claimed == seq or self._stage != RUN:
                return None, timeout, []
            run_began = self._run_began
            if now - run_began < timeout:
                return None, max(0.0, run_began + timeout - now), []
            self._claimed = seq
            finished, self._finished = self._finished, []
            return Claimed(RUN, self.began, self._epoch, run_began), timeout, finished

    # The thread's side.

    def burst(self) -> None:
        """
        (The cannon's thread.) Transactions back to back, then post them.
        """
        try:
            results, outcome = self._run_burst()
        except BaseException:
            results, outcome = [], Failure()
        self._mailbox.post(self._landed, results, outcome)

    def _run_burst(self) -> tuple[list[Result], object]:
        monotonic = self._clocks.monotonic
        limit = 1 if self._settings.pacing > 0 else THREAD_BURST
        deadline = monotonic() + THREAD_BURST_SECONDS
        outcome: object = None
        for _ in range(limit):
            problem = self._one()
            if problem:
                outcome = problem
                if problem == RETRY:
                    break
            if self.stop_asked or monotonic() >= deadline:
                break
        with self._lock:
            results, self._finished = self._finished, []
        return results, outcome

    def _one(self) -> str:
        """
        (The cannon's thread.) One transaction: its result goes to the
        burst's finished results (unless the reactor claimed it); returns
        a problem to tell the reactor (RETRY, a misuse text, or ``""``).
        """
        clocks = self._clocks
        monotonic = clocks.monotonic
        self._seq += 1
        seq = self._seq
        began = self.began = monotonic()
        self._epoch = epoch = clocks.wall()
        self._stage = MAKING
        self._current = seq
        error = ""
        problem = ""
        run_time = 0.0
        steps = self._steps
        if steps is NO_TRANSACTION:
            try:
                steps = self._steps = steps_of(self._settings.make_transaction())
            except Exception as e:
                error = "Transaction() failed: " + describe_error(e)
                problem = RETRY
        transaction = steps.transaction
        if transaction is not None:
            try:
                transaction.custom_timers = {}
            except Exception:
                pass
            if self._settings.request_timers:
                # A transaction given up on (timed out) may have added to
                # them after its result was reported.
                take_request_timers(transaction)
            setup = steps.setup
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
                timeout = self._settings.transaction_timeout
                if timeout is not None and run_time > timeout and not error:
                    error = f"timeout after {timeout:g}s"
            tear_down = steps.tear_down
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
        # Built before the lock (a claimed one is rare, and then dropped).
        result = result_of(self._settings, transaction, began, epoch, run_time, error)
        with self._lock:
            self._current = 0
            if self._claimed != seq:
                self._finished.append(result)
        return problem
