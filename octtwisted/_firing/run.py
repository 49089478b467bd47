"""
One run: everything that lives from ``start`` to the end of the stop.

:class:`Run` owns the cannons, the start schedule that brings them in, the
run's statistics and progress lines, its HTTP clients and the garbage
collector policy's run. :meth:`Run.stop` is the one way a run ends, for
every path (``stop``, ``kill``, a signal, an abort, a lost HQ): one
Deferred, bounded by the stop timeout and the cancel grace.
:meth:`Run.close` then takes its summary, once the results it made have
been flushed or given up on, so that its dropped count is its own.

A run's phases (:class:`Phase`) decide what happens to a result:

- FIRING, STOPPING: sent to the HQ and counted;
- SUPERSEDED: stopping, but the next run's ``start`` has come (a new HQ is
  there): counted in the summary, not sent, counted as discarded;
- OVER: the cannons stopped or were given up on; a result an abandoned
  cannon makes after that is logged and discarded, never sent, never
  counted in a summary.
"""

from __future__ import annotations

import enum
import os
import functools
from typing import Any, Callable

import attrs

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.deferreds import when_fired
from octtwisted._core.interfaces import ResultSink
from octtwisted._core.messages import Result
from octtwisted._core.share import LoadShare
from octtwisted._firing.account import RunAccount
from octtwisted._firing.backpressure import Backpressure
from octtwisted._firing.gcpolicy import GCPolicy
from octtwisted._firing.schedule import StartSchedule
from octtwisted._firing.schedule_choice import schedule_for
from octtwisted._firing.steps import CannonFactory, FiringCannon
from octtwisted._firing.stopping import BoundedStop
from octtwisted._http.recording import Recording
from octtwisted._http.shared import SharedHTTPClient
from octtwisted._scripts.factory import TransactionFactory
from octtwisted._stats.cpu import CPUReader, CPUSampler
from octtwisted._stats.outputs import RunOutputs
from octtwisted._stats.progress import ProgressReporter
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import RunStats, Summary
from octtwisted._stats.table import format_table

#: Makes a run's start schedule (see :func:`~octtwisted._firing.schedule_choice.schedule_for`).
MakeSchedule = Callable[..., StartSchedule]


#: Count every request of the run's HTTP clients (per-request statistics).
#: Off only for the bench's comparison (``OCTTWISTED_BENCH_NO_REQUESTS=1``
#: in the environment); not a setting.
RECORD_REQUESTS = os.environ.get("OCTTWISTED_BENCH_NO_REQUESTS") != "1"


class Phase(enum.Enum):
    FIRING = "firing"
    STOPPING = "stopping"
    SUPERSEDED = "superseded"
    OVER = "over"


class Run:
    """
    :param transaction_class: the script's ``Transaction``.
    :param context: the HQ's transaction context at ``start``.
    :param steps: calls the transactions' steps (reactor or threads).
    :param sink: where results go (and how full it is, for backpressure).
    :param gc: the garbage collector policy.
    :param on_crash: called if a cannon's own machinery fails (a bug).
    :param make_schedule: makes the start schedule.
    :param outputs: the run's report, results file and thresholds, if any.
    :param share: this process's part of the load (``--processes``), or
        None: the whole load.
    :param cpu: reads the turret's CPU seconds, sampled while the run
        fires (None: not measured, as in a worker process).
    """

    log = logs.logger(logs.TURRET)

    def __init__(
        self,
        *,
        config: TurretConfig,
        transaction_class: Callable[..., Any],
        context: dict[str, Any],
        steps: CannonFactory,
        clocks: Clocks,
        sink: ResultSink,
        gc: GCPolicy,
        on_crash: Callable[[Failure], None],
        make_schedule: MakeSchedule = schedule_for,
        outputs: RunOutputs | None = None,
        share: LoadShare | None = None,
        cpu: CPUReader | None = None,
    ) -> None:
        self._config = config
        self._cpu = None if cpu is None else CPUSampler(clocks.reactor, cpu)
        self._sink = sink
        self._gc = gc
        self.account = RunAccount(clocks, sink)
        recording = (
            Recording(clocks.reactor, self.account.stats.requests, config.request_timers)
            if RECORD_REQUESTS else None
        )
        self._http = SharedHTTPClient(
            clocks.reactor, config.cannons, config.tls, config.http_limits, recording
        )
        #: the run's cannons, in the order they came in
        self.cannons: list[FiringCannon] = []
        self._share = share
        self._schedule = make_schedule(
            config, clocks.reactor, self._bring_in, self._all_in, share=share
        )
        self._new_cannon = _CannonMaker(
            functools.partial(
                steps.make_cannon,
                turret_name=config.name,
                make_transaction=TransactionFactory(transaction_class, config.raw, context, self._http),
                clocks=clocks,
                report=self._deliver,
                pacing=config.pacing,
                transaction_timeout=config.transaction_timeout,
                on_crash=on_crash,
                # the results carry what the clients add: the recording decides
                request_timers=recording is not None and recording.timers,
            ),
            Backpressure(sink, config.max_pending_results),
            self._schedule,
        )
        starts = self._schedule.starts
        self._progress = ProgressReporter(
            clocks.reactor,
            config.progress_interval,
            self._schedule.target,
            self.active_cannons,
            self.account.stats.take_interval,
            starts.take_interval if starts is not None else None,
            self.in_flight,
        )
        self._stop = BoundedStop(clocks.reactor, config.stop_timeout)
        self._outputs = outputs
        self.phase = Phase.FIRING
        #: the run's summary, once :meth:`close` has taken it
        self.summary: Summary | None = None

    # Queries

    @property
    def stats(self) -> RunStats:
        return self.account.stats

    @property
    def discarded(self) -> int:
        return self.account.discarded

    @property
    def cannons_started(self) -> int:
        return self._schedule.started

    @property
    def starts(self) -> StartStats | None:
        """The open model's start figures (None in the closed model)."""
        return self._schedule.starts

    def active_cannons(self) -> int:
        """Cannons firing now: brought in, running, not held by the schedule."""
        if self.phase is Phase.FIRING:
            return self._schedule.active()
        return sum(1 for c in self.cannons if c.running)

    def in_flight(self) -> int:
        """
        Transactions in flight now: while firing, the cannons not waiting
        (for pacing, the schedule or backpressure); once the stop began,
        those it still waits for.
        """
        if self.phase is Phase.FIRING:
            return sum(1 for c in self.cannons if c.busy)
        return self._stop.in_flight

    def active_peak(self) -> int:
        """
        The most cannons firing at once since the last call (in the open
        model, the most transactions in flight); then it counts from now.
        """
        return max(self._schedule.take_active_peak(), self.active_cannons())

    # Firing

    def start(self) -> None:
        """
        Open fire: the schedule's times, and every result's ``elapsed``,
        count from now.
        """
        self._log_open_fire()
        self._progress.start()
        self._gc.run_started()
        self.account.begin()
        if self._outputs is not None:
            self._outputs.run_started(
                self.account.stats, self.active_peak, self._schedule.starts,
                in_flight=self.in_flight, stopping=lambda: self.phase is not Phase.FIRING,
            )
        if self._cpu is not None:
            self._cpu.start()
        self._schedule.start()

    def _log_open_fire(self) -> None:
        """
        Say what the run fires: the config's load, or with ``--processes``
        this process's share of it.
        """
        config = self._config
        share = self._share
        cannons = config.cannons if share is None else share.cannons
        of = "" if share is None else f" (share {share.index + 1} of {share.count})"
        if config.arrival_rate is not None:
            rate = config.arrival_rate * cannons / config.cannons
            self.log.info(
                "open fire{of}: {rate:g} transactions/s, at most {cannons} in flight, {load}",
                of=of,
                rate=rate,
                cannons=cannons,
                load=f"{len(config.stages)} stages" if config.stages else f"rampup {config.rampup}s",
            )
        elif config.stages:
            self.log.info(
                "open fire{of}: up to {cannons} cannons over {stages} stages",
                of=of,
                cannons=cannons,
                stages=len(config.stages),
            )
        else:
            self.log.info(
                "open fire{of}: {cannons} cannons over {rampup}s",
                of=of,
                cannons=cannons,
                rampup=config.rampup,
            )

    def _bring_in(self, index: int) -> None:
        """
        Make cannon ``index`` and start it (called by the schedule): a
        cannon is only made when its time comes.
        """
        cannon = self._new_cannon(index, self.account.began)
        self.cannons.append(cannon)
        cannon.start()

    def _all_in(self) -> None:
        share = self._share
        self.log.info(
            "all {cannons} cannons firing",
            cannons=self._config.cannons if share is None else share.cannons,
        )
        self._gc.all_cannons_in()

    def _deliver(self, result: Result) -> None:
        phase = self.phase
        if phase is Phase.FIRING or phase is Phase.STOPPING:
            self._sink.send_result(result)
            self.account.stats.record(result)
            outputs = self._outputs
            if outputs is not None and outputs.on_result is not None:
                outputs.on_result(result)
        elif phase is Phase.SUPERSEDED:
            self.account.discarded += 1
            self.account.stats.record(result)
        else:
            self.account.discarded += 1
            self.log.warn(
                "a cannon abandoned at the end of the run ended its transaction "
                "late: its result is discarded, not sent ({discarded} so far)",
                discarded=self.account.discarded,
            )

    # Stopping

    def stop(self) -> Deferred[None]:
        """
        Stop every cannon, bounded (see
        :class:`~octtwisted._firing.stopping.BoundedStop`); then the run is
        OVER. Any number of calls share the one stop; each gets a Deferred
        that fires when it is over.
        """
        if self.phase is Phase.FIRING:
            self.phase = Phase.STOPPING
            self.account.stopping()
            self._progress.stopping()
            self._schedule.cancel()
            self._stop.stop(self.cannons).addCallback(lambda _: self._end())
            self.account.in_flight_at_stop = self._stop.in_flight_at_start
        return when_fired(self._stop.done)

    def supersede(self) -> None:
        """
        The next run's ``start`` came while this one stops: the results it
        still makes, and those the sink still queues, must not reach the
        new HQ. They are discarded (and counted).
        """
        if self.phase is Phase.STOPPING:
            self.phase = Phase.SUPERSEDED
            self._sink.discard_queued()  # counted in the sink's dropped

    def _end(self) -> None:
        """
        The cannons have stopped (or were given up on): close what the run
        opened.
        """
        self.account.end()
        if self._cpu is not None:
            self._cpu.stop()
        self.phase = Phase.OVER
        self._gc.run_ended()
        self._progress.stop()
        self._http.close().addErrback(
            lambda f: self.log.failure("closing HTTP connections", failure=f)
        )

    def close(self) -> Summary:
        """
        Take the run's summary, after :meth:`stop` and once the sink has
        flushed or given up on the run's results (so its dropped count is
        this run's own).
        """
        if self.summary is None:
            starts = self._schedule.starts
            summary = self.account.summary(
                self._config, self.cannons_started, starts.figures() if starts else None
            )
            summary, cpu = with_cpu(summary, self._cpu)
            if self._outputs is not None:
                summary = self._outputs.run_ended(summary, cpu)
            self.summary = summary
        return self.summary

    def log_summary(self, *, as_table: bool) -> None:
        """
        Log the run's summary: as a table, or as one line (a standalone run
        prints the table itself). The figures are the event's ``summary``.
        """
        if self.summary is not None:
            log_summary(self.log, self.summary, as_table=as_table)


def with_cpu(
    summary: Summary, sampler: CPUSampler | None
) -> tuple[Summary, dict[str, Any] | None]:
    """
    The summary with the CPU peak the sampler saw, and its samples (for
    the report); the summary as it is without a sampler.
    """
    if sampler is None:
        return summary, None
    return attrs.evolve(summary, cpu_peak=sampler.peak), sampler.to_dict()


def log_summary(log: Logger, summary: Summary, *, as_table: bool) -> None:
    """
    Log a run's summary as a table, or as one line; the figures are the
    event's ``summary``.
    """
    if as_table:
        log.info("run summary:\n{table}", table=format_table(summary), summary=summary.to_dict())
    else:
        log.info(
            "run summary: {transactions} transactions, {errors} errors, {tps:.1f} tx/s",
            transactions=summary.transactions,
            errors=summary.errors,
            tps=summary.transactions_per_second,
            summary=summary.to_dict(),
        )


class _CannonMaker:
    """
    Makes cannon ``index``, with what it waits for before each
    transaction: backpressure first (too many results wait for the HQ),
    then the start schedule.
    """

    def __init__(
        self,
        make: Callable[..., FiringCannon],
        backpressure: Backpressure,
        schedule: StartSchedule,
    ) -> None:
        self._make = make
        self._backpressure = backpressure
        self._schedule = schedule

    def __call__(self, index: int, started_at: float) -> FiringCannon:
        backpressure, schedule = self._backpressure.hold, self._schedule.hold
        if not self._schedule.holds:
            return self._make(index=index, started_at=started_at, throttle=backpressure)

        def throttle() -> Deferred[None] | None:
            return backpressure() or schedule(index)

        return self._make(index=index, started_at=started_at, throttle=throttle)
