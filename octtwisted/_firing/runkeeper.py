"""
The turret's runs, one after the other.

:class:`RunKeeper` makes each :class:`~octtwisted._firing.run.Run` with
what every run is given, keeps the one under way, and keeps what is left
of those that ended: the last summary, and the results and errors of
them all. The turret decides when a run starts, stops and closes; this
is where that happens to the run.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.interfaces import ResultSink
from octtwisted._firing.gcpolicy import GCPolicy
from octtwisted._firing.run import Run
from octtwisted._firing.steps import CannonFactory
from octtwisted._stats.outputs import RunOutputs
from octtwisted._stats.summary import Summary


class RunKeeper:
    """
    :param on_crash: called if a cannon's own machinery fails (a bug).

    The other parameters are given to every :class:`Run`.
    """

    def __init__(
        self,
        *,
        config: TurretConfig,
        transaction_class: Callable[..., Any],
        steps: CannonFactory,
        clocks: Clocks,
        sink: ResultSink,
        gc: GCPolicy,
        outputs: RunOutputs | None,
        on_crash: Callable[[Failure], None],
    ) -> None:
        self._config = config
        self._transaction_class = transaction_class
        self._steps = steps
        self._clocks = clocks
        self._sink = sink
        self._gc = gc
        self._outputs = outputs
        self._on_crash = on_crash
        #: the run under way (firing or stopping), if any
        self.current: Run | None = None
        #: the summary of the last run, once it has closed
        self.last_summary: Summary | None = None
        self._earlier = (0, 0)  # results and errors of the runs that closed

    @property
    def results(self) -> int:
        """Results made since the process started."""
        run = self.current
        return self._earlier[0] + (run.stats.transactions if run else 0)

    @property
    def errors(self) -> int:
        """Error results made since the process started."""
        run = self.current
        return self._earlier[1] + (run.stats.errors if run else 0)

    def start(self, context: dict[str, Any]) -> None:
        """
        Make a run with the HQ's transaction context and open fire.
        """
        self.current = Run(
            config=self._config,
            transaction_class=self._transaction_class,
            context=context,
            steps=self._steps,
            clocks=self._clocks,
            sink=self._sink,
            gc=self._gc,
            on_crash=self._on_crash,
            outputs=self._outputs,
        )
        self.current.start()

    def stop(self) -> Deferred[None]:
        """
        The one stop sequence of every path: stop the run under way, if
        any. A second path during a stop waits for the same stop.
        """
        if self.current is None:
            return defer.succeed(None)
        return self.current.stop()

    def close(self, *, as_table: bool) -> None:
        """
        The run has stopped and its results were flushed (or given up on):
        take and log its summary (``as_table``: as a table), and forget it.
        """
        run, self.current = self.current, None
        if run is None:
            return
        summary = run.close()
        self.last_summary = summary
        self._earlier = (
            self._earlier[0] + summary.transactions,
            self._earlier[1] + summary.errors,
        )
        run.log_summary(as_table=as_table)
