"""
One run: everything that lives from ``start`` to the end of the stop.

:class:`Run` owns the cannons, the start schedule that brings them in, the
run's statistics and progress lines, its HTTP clients and the garbage
collector policy's run. :meth:`Run.stop` is the one way a run ends, for
every path (``stop``, ``kill``, a signal, an abort, a lost HQ): one
Deferred, bounded by the stop timeout and the cancel grace.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.deferreds import cancel_call, when_fired
from octtwisted._core.interfaces import ResultSink
from octtwisted._core.messages import Result
from octtwisted._firing.backpressure import Backpressure
from octtwisted._firing.cannon import Cannon
from octtwisted._firing.gcpolicy import GCPolicy
from octtwisted._firing.schedule import StartSchedule, schedule_for
from octtwisted._firing.steps import StepCaller
from octtwisted._http.shared import SharedHTTPClient
from octtwisted._scripts.factory import TransactionFactory
from octtwisted._stats.progress import ProgressReporter
from octtwisted._stats.summary import RunStats, Summary

#: Seconds to wait for cancelled transactions to end after the stop timeout.
CANCEL_GRACE = 1.0

#: Makes a run's start schedule (see :func:`~octtwisted._firing.schedule.schedule_for`).
MakeSchedule = Callable[..., StartSchedule]


class Run:
    """
    :param transaction_class: the script's ``Transaction``.
    :param context: the HQ's transaction context at ``start``.
    :param steps: calls the transactions' steps (reactor or threads).
    :param sink: where results go (and how full it is, for backpressure).
    :param gc: the garbage collector policy.
    :param on_crash: called if a cannon's own machinery fails (a bug).
    :param make_schedule: makes the start schedule.
    """

    log = logs.logger(logs.TURRET)

    def __init__(
        self,
        *,
        config: TurretConfig,
        transaction_class: Callable[..., Any],
        context: dict[str, Any],
        steps: StepCaller,
        clocks: Clocks,
        sink: ResultSink,
        gc: GCPolicy,
        on_crash: Callable[[Failure], None],
        make_schedule: MakeSchedule = schedule_for,
    ) -> None:
        self._config = config
        self._clocks = clocks
        self._sink = sink
        self._gc = gc
        self._http = SharedHTTPClient(clocks.reactor, config.cannons)
        self.stats = RunStats()
        #: the run's cannons, in the order they came in
        self.cannons: list[Cannon] = []
        backpressure = Backpressure(sink, config.max_pending_results)
        self._schedule = make_schedule(config, clocks.reactor, self._bring_in, self._all_in)
        self._make_cannon = functools.partial(
            Cannon,
            turret_name=config.name,
            make_transaction=TransactionFactory(transaction_class, config.raw, context, self._http),
            steps=steps,
            clocks=clocks,
            report=self._deliver,
            pacing=config.pacing,
            transaction_timeout=config.transaction_timeout,
            on_crash=on_crash,
        )
        self._throttle = _Throttle(backpressure, self._schedule)
        starts = self._schedule.starts
        self._progress = ProgressReporter(
            clocks.reactor,
            config.progress_interval,
            self._schedule.target,
            self.active_cannons,
            self.stats.take_interval,
            starts.take_interval if starts is not None else None,
        )
        self._began = 0.0
        self._dropped_before = 0
        self._stopped: Deferred[None] | None = None
        self._stop_timer: IDelayedCall | None = None
        #: the run's summary, once it has stopped
        self.summary: Summary | None = None

    # Queries

    @property
    def cannons_started(self) -> int:
        return self._schedule.started

    def active_cannons(self) -> int:
        """Cannons firing now: brought in, running, not held by the schedule."""
        if self._stopped is not None:
            return sum(1 for c in self.cannons if c.running)
        return self._schedule.active()

    # Firing

    def start(self) -> None:
        """
        Open fire: the schedule's times, and every result's ``elapsed``,
        count from now.
        """
        self._log_open_fire()
        self._dropped_before = self._sink.dropped
        self._progress.start()
        self._gc.run_started()
        self._began = self._clocks.monotonic()
        self._schedule.start()

    def _log_open_fire(self) -> None:
        config = self._config
        if config.arrival_rate is not None:
            self.log.info(
                "open fire: {rate:g} transactions/s, at most {cannons} in flight, "
                "{load}",
                rate=config.arrival_rate,
                cannons=config.cannons,
                load=f"{len(config.stages)} stages" if config.stages else f"rampup {config.rampup}s",
            )
        elif config.stages:
            self.log.info(
                "open fire: up to {cannons} cannons over {stages} stages",
                cannons=config.cannons,
                stages=len(config.stages),
            )
        else:
            self.log.info(
                "open fire: {cannons} cannons over {rampup}s",
                cannons=config.cannons,
                rampup=config.rampup,
            )

    def _bring_in(self, index: int) -> None:
        """
        Make cannon ``index`` and start it (called by the schedule): a
        cannon is only made when its time comes.
        """
        cannon = self._make_cannon(
            index=index, started_at=self._began, throttle=self._throttle.for_cannon(index)
        )
        self.cannons.append(cannon)
        cannon.start()

    def _all_in(self) -> None:
        self.log.info("all {cannons} cannons firing", cannons=self._config.cannons)
        self._gc.all_cannons_in()

    def _deliver(self, result: Result) -> None:
        self._sink.send_result(result)
        self.stats.record(result)

    # Stopping

    def stop(self) -> Deferred[None]:
        """
        Stop every cannon: transactions in flight may end within the stop
        timeout; then they are cancelled, and given CANCEL_GRACE more. Then
        the run ends (:attr:`summary` is set). Any number of calls share
        the one stop; each gets a Deferred that fires when it is over.
        """
        if self._stopped is None:
            self._stopped = Deferred()
            self._schedule.cancel()
            started = [c for c in self.cannons if c.started]
            if started:
                self._stop_timer = self._clocks.reactor.callLater(
                    self._config.stop_timeout, self._cancel_in_flight, started
                )
                stopping = defer.DeferredList([c.stop() for c in started])
                stopping.addCallback(lambda _: self._end())
            else:
                self._end()
        return when_fired(self._stopped)

    def _cancel_in_flight(self, cannons: list[Cannon]) -> None:
        timeout = self._config.stop_timeout
        self.log.warn(
            "stop timeout ({timeout}s): cancelling transactions in flight",
            timeout=timeout,
        )
        reason = f"cancelled: still running at the stop timeout ({timeout:g}s)"
        for cannon in cannons:
            cannon.cancel_in_flight(reason)
        self._stop_timer = self._clocks.reactor.callLater(CANCEL_GRACE, self._give_up)

    def _give_up(self) -> None:
        self._stop_timer = None
        self.log.error("some cannons did not stop; going on without them")
        self._end()

    def _end(self) -> None:
        """
        The cannons have stopped (or were given up on): close what the run
        opened and take its summary. Once only.
        """
        assert self._stopped is not None
        if self._stopped.called:
            return
        cancel_call(self._stop_timer)
        self._stop_timer = None
        self._gc.run_ended()
        self._progress.stop()
        self._http.close().addErrback(
            lambda f: self.log.failure("closing HTTP connections", failure=f)
        )
        self.summary = self.stats.summary(
            duration=self._clocks.monotonic() - self._began,
            cannons=self._config.cannons,
            cannons_reached=self.cannons_started,
            dropped=self._sink.dropped - self._dropped_before,
            starts=self._schedule.starts.figures() if self._schedule.starts else None,
        )
        self._stopped.callback(None)

    def log_summary(self, *, as_table: bool) -> None:
        """
        Log the run's summary: as a table, or as one line (a standalone run
        prints the table itself). The figures are the event's ``summary``.
        """
        summary = self.summary
        if summary is None:
            return
        if as_table:
            self.log.info(
                "run summary:\n{table}", table=summary.format_table(), summary=summary.to_dict()
            )
        else:
            self.log.info(
                "run summary: {transactions} transactions, {errors} errors, {tps:.1f} tx/s",
                transactions=summary.transactions,
                errors=summary.errors,
                tps=summary.transactions_per_second,
                summary=summary.to_dict(),
            )


class _Throttle:
    """
    What a cannon waits for before each transaction: backpressure first
    (too many results wait for the HQ), then the start schedule.
    """

    def __init__(self, backpressure: Backpressure, schedule: StartSchedule) -> None:
        self._backpressure = backpressure
        self._schedule = schedule

    def for_cannon(self, index: int) -> Callable[[], Deferred[None] | None]:
        backpressure, schedule = self._backpressure.hold, self._schedule.hold

        def throttle() -> Deferred[None] | None:
            return backpressure() or schedule(index)

        return throttle
