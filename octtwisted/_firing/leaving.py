"""
How the turret ends: the process is told to stop (a signal, the end of a
standalone run), the HQ's ``kill``, or an abort (the turret's own error).

Every way out is the one sequence of :class:`Leaving`: move to a state on
the way out, end the run under way (bounded by the stop timeout), move to
the final state (the status the HQ is sent), flush the results (bounded by
the linger), close the run, and exit with a status if the way out has one.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.interfaces import ResultSink
from octtwisted._firing.lifecycle import FINAL_STATES, Lifecycle, State
from octtwisted._firing.runkeeper import RunKeeper

#: Exit status of a turret that died of its own error (EX_SOFTWARE).
EXIT_ABORTED = 70


class Leaving:
    """
    :param runs: the turret's runs (the one under way is stopped).
    :param sink: flushed once the run has stopped.
    :param linger: the most seconds the flush may take.
    :param close_run: takes and logs the stopped run's summary.
    :param exit: ends the process with an exit status.
    """

    log = logs.logger(logs.TURRET)

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        runs: RunKeeper,
        sink: ResultSink,
        linger: float,
        close_run: Callable[[], None],
        exit: Callable[[int], None],
    ) -> None:
        self._lifecycle = lifecycle
        self._runs = runs
        self._sink = sink
        self._linger = linger
        self._close_run = close_run
        self._exit = exit
        self._stopping: Deferred[None] | None = None

    def shut_down(self) -> Deferred[None]:
        """
        The process is stopping: end as ``STOPPED``, with no exit status
        of the turret's own. If the turret is already on its way out (kill,
        abort), that way ends the same.
        """
        state = self._lifecycle.state
        if state in FINAL_STATES or state in (State.KILLING, State.SHUTTING_DOWN):
            return self._stopping or defer.succeed(None)
        return self._leave(State.SHUTTING_DOWN, State.STOPPED)

    def kill(self) -> Deferred[None]:
        """
        The ``kill`` order: stop, report ``Killed``, flush, exit 0.
        """
        return self._leave(State.KILLING, State.KILLED, exit_code=0, failed=self.abort)

    def abort(self, failure: Failure) -> None:
        """
        The turret itself failed: send ``Aborted``, stop, exit non-zero.
        """
        self.log.failure("turret error; aborting", failure=failure)
        state = self._lifecycle.state
        if state is State.STOPPED:
            self._exit(EXIT_ABORTED)
            return
        if state in FINAL_STATES:
            return

        def failed(failure: Failure) -> None:
            self._report_failure(failure)
            self._exit(EXIT_ABORTED)

        self._leave(State.ABORTED, State.ABORTED, exit_code=EXIT_ABORTED, failed=failed)

    def _report_failure(self, failure: Failure) -> None:
        self.log.failure("error while stopping", failure=failure)

    def _leave(
        self,
        via: State,
        final: State,
        *,
        exit_code: int | None = None,
        failed: Callable[[Failure], None] | None = None,
    ) -> Deferred[None]:
        """
        The way out of every path that ends the turret: move to ``via``,
        end the run, move to ``final``, flush the results (bounded by the
        linger), and exit with ``exit_code`` if one is given.
        """
        self._lifecycle.move(via)
        d = self._runs.stop()
        if final is not via:
            d.addCallback(lambda _: self._lifecycle.move(final))
        d.addCallback(lambda _: self._sink.flush(self._linger))
        d.addCallback(lambda _: self._close_run())
        if exit_code is not None:
            d.addCallback(lambda _: self._exit(exit_code))
        d.addErrback(failed if failed is not None else self._report_failure)
        self._stopping = d
        return d
