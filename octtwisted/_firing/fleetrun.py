"""
A run fired by the turret's worker processes (``--processes``).

:class:`FleetRun` is the main process's run: the same part of the turret
as a :class:`~octtwisted._firing.run.Run` (the turret starts, stops,
supersedes and closes it the same way), but its cannons fire in the
workers, through a :class:`WorkerGroup`. Each worker sends it parts of its
figures (10 times a second, and its last one when its run has stopped);
they are added into one :class:`~octtwisted._stats.summary.RunStats` (and
one :class:`~octtwisted._stats.starts.StartStats` in the open model), so
the progress lines, the live line, the report's charts, the thresholds
and the summary are the whole turret's, merged exactly (see
:mod:`octtwisted._stats.parts`).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.deferreds import when_fired
from octtwisted._firing.profile import Profile
from octtwisted._firing.run import Phase, log_summary, with_cpu
from octtwisted._firing.runkeeper import MakeRun
from octtwisted._stats.cpu import CPUReader, CPUSampler
from octtwisted._stats.outputs import RunOutputs
from octtwisted._stats.parts import Part
from octtwisted._stats.progress import ProgressReporter
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import RunStats, Summary


class WorkersFailed(Exception):
    """The worker processes kept dying: the run cannot go on."""


class RunListener(Protocol):
    """What the worker group tells the run under way."""

    def part(self, worker: int, part: Part, active: int, started: int, in_flight: int = 0) -> None:
        """
        Worker ``worker`` sent a part, with its active and started cannons
        and its transactions in flight.
        """

    def ended(self, worker: int, started: int, dropped: int) -> None:
        """Worker ``worker``'s run stopped: its last figures."""

    def lost(self, worker: int) -> None:
        """Worker ``worker`` died during the run (a fresh one may take its place)."""

    def failed(self, reason: str) -> None:
        """The workers keep dying: the run cannot go on."""


class WorkerGroup(Protocol):
    """The worker processes, as a run uses them (see ``_edge/fleet.py``)."""

    @property
    def processes(self) -> int: ...

    @property
    def replaced(self) -> int: ...

    def ready(self) -> Deferred[None]: ...

    def start_run(self, context: dict[str, Any], listener: RunListener) -> None: ...

    def stop_run(self) -> Deferred[None]: ...

    def supersede_run(self) -> None: ...


def load_target(config: TurretConfig) -> Callable[[float], float]:
    """
    What the whole turret aims at ``t`` seconds after the start: active
    cannons (closed model) or starts per second (open model), as the
    schedules of :func:`~octtwisted._firing.schedule_choice.schedule_for`
    compute it.
    """
    steps = [(stage.duration, stage.target) for stage in config.stages]
    if config.arrival_rate is not None:
        profile = (
            Profile(steps, initial=config.arrival_rate)
            if steps
            else Profile.ramp(config.arrival_rate, config.rampup)
        )
        return profile.value
    if steps:
        stages = Profile(steps)
        return lambda t: min(stages.value(t), config.cannons)
    return lambda t: config.cannons


def fleet_runs(
    *,
    config: TurretConfig,
    workers: WorkerGroup,
    clocks: Clocks,
    outputs: RunOutputs | None = None,
    cpu: CPUReader | None = None,
) -> MakeRun:
    """Runs whose cannons fire in the worker processes."""

    def make(context: dict[str, Any], on_crash: Callable[[Failure], None]) -> FleetRun:
        return FleetRun(
            config=config, workers=workers, context=context, clocks=clocks,
            on_crash=on_crash, outputs=outputs, cpu=cpu,
        )

    return make


class WorkerTally:
    """
    What a run knows of each worker's cannons: the active and started
    cannons of its last part, those started by workers that ended or were
    replaced, and the results they dropped.
    """

    def __init__(self, processes: int, replaced_before: int) -> None:
        self.active = [0] * processes
        self.started = [0] * processes
        self.in_flight = [0] * processes
        self.started_before = 0
        self.dropped = 0
        self.peak = 0
        #: the processes replaced before the run began
        self.replaced_before = replaced_before

    def part(self, worker: int, active: int, started: int, in_flight: int = 0) -> None:
        self.active[worker] = active
        self.started[worker] = started
        self.in_flight[worker] = in_flight
        self.peak = max(self.peak, sum(self.active))

    def take_peak(self) -> int:
        """
        The most active cannons the parts told since the last call (each
        worker's count as of its part, 10 a second); then from now.
        """
        peak, self.peak = self.peak, sum(self.active)
        return max(peak, self.peak)

    def ended(self, worker: int, started: int, dropped: int) -> None:
        self.started_before += started
        self.started[worker] = self.active[worker] = self.in_flight[worker] = 0
        self.dropped += dropped

    def lost(self, worker: int) -> None:
        self.started_before += self.started[worker]
        self.started[worker] = self.active[worker] = self.in_flight[worker] = 0

    @property
    def cannons_started(self) -> int:
        return self.started_before + sum(self.started)


class FleetTimes:
    """
    When a fleet run told the workers to open fire, when it told them to
    stop (and with how many transactions in flight), and when they had all
    stopped, on the monotonic clock.
    """

    def __init__(self, clocks: Clocks) -> None:
        self._clocks = clocks
        self._began: float | None = None
        self._stopping: tuple[float, int] | None = None
        self._ended: float | None = None

    def began(self) -> None:
        self._began = self._clocks.monotonic()

    def stopping(self, in_flight: int) -> bool:
        """The stop begins; False if the workers never opened fire."""
        if self._began is None:
            return False
        self._stopping = (self._clocks.monotonic(), in_flight)
        return True

    def ended(self) -> None:
        self._ended = self._clocks.monotonic()

    def elapsed(self) -> float:
        """Seconds fired: from the workers' start to the end of the stop."""
        if self._began is None:
            return 0.0
        ended = self._ended if self._ended is not None else self._clocks.monotonic()
        return ended - self._began

    def stop_wait(self) -> tuple[float, int]:
        """Seconds the stop waited, and the transactions in flight as it began."""
        if self._stopping is None or self._ended is None:
            return 0.0, 0
        return self._ended - self._stopping[0], self._stopping[1]


class FleetRun:
    """
    :param workers: the worker processes.
    :param context: the HQ's transaction context at ``start``.
    :param on_crash: called if the workers keep dying.
    :param outputs: the run's report, results file and thresholds, if any.
    :param cpu: reads the CPU seconds of this process and the workers,
        sampled while the run fires.
    """

    log = logs.logger(logs.TURRET)

    def __init__(
        self,
        *,
        config: TurretConfig,
        workers: WorkerGroup,
        context: dict[str, Any],
        clocks: Clocks,
        on_crash: Callable[[Failure], None],
        outputs: RunOutputs | None = None,
        cpu: CPUReader | None = None,
    ) -> None:
        self._config = config
        self._cpu = None if cpu is None else CPUSampler(clocks.reactor, cpu)
        self._workers = workers
        self._context = context
        self._on_crash = on_crash
        self._outputs = outputs
        self.stats = RunStats()
        self.starts: StartStats | None = StartStats() if config.arrival_rate is not None else None
        self._tally = WorkerTally(workers.processes, workers.replaced)
        self._times = FleetTimes(clocks)
        target = load_target(config)
        self._progress = ProgressReporter(
            clocks.reactor,
            config.progress_interval,
            lambda: target(self._times.elapsed()),
            self.active_cannons,
            self.stats.take_interval,
            self.starts.take_interval if self.starts is not None else None,
            self.in_flight,
        )
        self.phase = Phase.FIRING
        self._stopped: Deferred[None] | None = None
        self.summary: Summary | None = None

    # Queries

    @property
    def cannons_started(self) -> int:
        return self._tally.cannons_started

    def active_cannons(self) -> int:
        return sum(self._tally.active)

    def in_flight(self) -> int:
        """The transactions in flight in the workers, as their last parts said."""
        return sum(self._tally.in_flight)

    # Firing

    def start(self) -> None:
        """
        Open fire once every worker is ready (the run's clock starts then).
        """
        self._workers.ready().addCallback(lambda _: self._open_fire())

    def _open_fire(self) -> None:
        if self.phase is not Phase.FIRING:
            return  # stopped before the workers were ready
        config = self._config
        self.log.info(
            "open fire from {processes} processes: {cannons} cannons{load}",
            processes=self._workers.processes,
            cannons=config.cannons,
            load=(f", {config.arrival_rate:g} transactions/s" if config.arrival_rate is not None
                  else ""),
        )
        self._times.began()
        self._progress.start()
        if self._outputs is not None:
            self._outputs.run_started(
                self.stats, self._tally.take_peak, self.starts,
                in_flight=self.in_flight, stopping=lambda: self.phase is not Phase.FIRING,
            )
        if self._cpu is not None:
            self._cpu.start()
        self._workers.start_run(self._context, self)

    # RunListener

    def part(self, worker: int, part: Part, active: int, started: int, in_flight: int = 0) -> None:
        self.stats.add_part(part, self.starts)
        self._tally.part(worker, active, started, in_flight)

    def ended(self, worker: int, started: int, dropped: int) -> None:
        self._tally.ended(worker, started, dropped)

    def lost(self, worker: int) -> None:
        self._tally.lost(worker)

    def failed(self, reason: str) -> None:
        self._on_crash(Failure(WorkersFailed(reason)))

    # Stopping

    def stop(self) -> Deferred[None]:
        if self.phase is Phase.FIRING:
            self.phase = Phase.STOPPING
            if self._times.stopping(self.in_flight()):
                self._progress.stopping()
            self._stopped = self._workers.stop_run()
            self._stopped.addCallback(lambda _: self._end())
        assert self._stopped is not None
        return when_fired(self._stopped)

    def supersede(self) -> None:
        if self.phase is Phase.STOPPING:
            self.phase = Phase.SUPERSEDED
            self._workers.supersede_run()

    def _end(self) -> None:
        self._times.ended()
        if self._cpu is not None:
            self._cpu.stop()
        self.phase = Phase.OVER
        self._progress.stop()

    def close(self) -> Summary:
        if self.summary is None:
            stop_wait, in_flight = self._times.stop_wait()
            summary = self.stats.summary(
                duration=self._times.elapsed(),
                stop_wait=stop_wait,
                in_flight_at_stop=in_flight,
                cannons=self._config.cannons,
                cannons_reached=self.cannons_started,
                dropped=self._tally.dropped,
                starts=self.starts.figures() if self.starts is not None else None,
                processes=self._workers.processes,
                processes_replaced=self._workers.replaced - self._tally.replaced_before,
            )
            summary, cpu = with_cpu(summary, self._cpu)
            if self._outputs is not None:
                summary = self._outputs.run_ended(summary, cpu)
            self.summary = summary
        return self.summary

    def log_summary(self, *, as_table: bool) -> None:
        if self.summary is not None:
            log_summary(self.log, self.summary, as_table=as_table)
