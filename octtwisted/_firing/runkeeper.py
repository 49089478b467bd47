"""
The turret's runs, one after the other.

:class:`RunKeeper` makes each run with the turret's :data:`MakeRun`,
keeps the one under way, and keeps what is left of those that ended: the
last summary, and the results and errors of them all. The turret decides
when a run starts, stops and closes; this is where that happens to the
run.

A run is a :class:`FiringRun`: in one process a
:class:`~octtwisted._firing.run.Run` (its cannons fire here, made by
:func:`local_runs`); with ``--processes`` a
:class:`~octtwisted._firing.fleetrun.FleetRun` (the worker processes'
cannons fire, and their figures are merged here).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.interfaces import ResultSink
from octtwisted._core.share import LoadShare
from octtwisted._firing.gcpolicy import GCPolicy, NoGCPolicy
from octtwisted._firing.run import Run
from octtwisted._firing.steps import CannonFactory
from octtwisted._stats.cpu import CPUReader
from octtwisted._stats.outputs import RunOutputs
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import RunStats, Summary


class FiringRun(Protocol):
    """
    What the turret needs of a run: see :class:`~octtwisted._firing.run.Run`.
    """

    @property
    def stats(self) -> RunStats:
        """The run's figures so far."""

    @property
    def cannons_started(self) -> int:
        """Cannons brought in so far."""

    @property
    def starts(self) -> StartStats | None:
        """The open model's start figures (None in the closed model)."""

    def active_cannons(self) -> int:
        """Cannons firing now."""

    def start(self) -> None:
        """Open fire."""

    def stop(self) -> Deferred[None]:
        """Stop every cannon (bounded); any number of calls share the one stop."""

    def supersede(self) -> None:
        """The next run's ``start`` came while this one stops."""

    def close(self) -> Summary:
        """Take the run's summary, once stopped and flushed."""

    def log_summary(self, *, as_table: bool) -> None:
        """Log the run's summary."""


#: Makes a run with the HQ's transaction context, and what to call if the
#: run's own machinery fails.
MakeRun = Callable[[dict[str, Any], Callable[[Failure], None]], FiringRun]


def local_runs(
    *,
    config: TurretConfig,
    transaction_class: Callable[..., Any],
    steps: CannonFactory,
    clocks: Clocks,
    sink: ResultSink,
    gc: GCPolicy | None = None,
    outputs: RunOutputs | None = None,
    share: LoadShare | None = None,
    cpu: CPUReader | None = None,
) -> MakeRun:
    """
    Runs whose cannons fire in this process (``share``: its part of the
    load, with ``--processes``; None: the whole load).
    """
    policy = gc if gc is not None else NoGCPolicy()

    def make(context: dict[str, Any], on_crash: Callable[[Failure], None]) -> Run:
        return Run(
            config=config,
            transaction_class=transaction_class,
            context=context,
            steps=steps,
            clocks=clocks,
            sink=sink,
            gc=policy,
            on_crash=on_crash,
            outputs=outputs,
            share=share,
            cpu=cpu,
        )

    return make


class RunKeeper:
    """
    :param make_run: makes each run.
    :param on_crash: called if a run's own machinery fails (a bug).
    """

    def __init__(self, make_run: MakeRun, on_crash: Callable[[Failure], None]) -> None:
        self._make_run = make_run
        self._on_crash = on_crash
        #: the run under way (firing or stopping), if any
        self.current: FiringRun | None = None
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
        self.current = self._make_run(context, self._on_crash)
        self.current.start()

    def stop(self) -> Deferred[None]:
        """
        The one stop sequence of every path: stop the run under way, if
        any. A second path during a stop waits for the same stop.
        """
        if self.current is None:
            return defer.succeed(None)
        return self.current.stop()

    def close(self, *, as_table: bool) -> Summary | None:
        """
        The run has stopped and its results were flushed (or given up on):
        take and log its summary (``as_table``: as a table), and forget it.
        """
        run, self.current = self.current, None
        if run is None:
            return None
        summary = run.close()
        self.last_summary = summary
        self._earlier = (
            self._earlier[0] + summary.transactions,
            self._earlier[1] + summary.errors,
        )
        run.log_summary(as_table=as_table)
        return summary
