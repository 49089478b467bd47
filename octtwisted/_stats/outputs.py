"""
What a run leaves besides its summary: thresholds, a timeline, the HTML
report, the results file, the live status line.

:class:`RunOutputs` is the turret's one hook for them. The turret calls
:meth:`RunOutputs.run_started` when it starts firing (with the open
model's start figures, if any), :attr:`on_result`
with every result (None when nothing needs results), and
:meth:`RunOutputs.run_ended` with the summary, which comes back with the
thresholds' outcomes. Files are written in a worker thread;
:meth:`RunOutputs.idle` fires when every file is on disk, and stopping the
service waits for that.

Obeying an HQ, the results file is made from the frames sent
(:attr:`OutputSettings.results_from_frames`): the composition root gives
the sender's batches to :meth:`RunOutputs.frames_sent`, which writes them
to the file of the run under way, if any. This module knows nothing of the
sender.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Protocol

import attrs
from twisted.application.service import Service
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from octtwisted._core import logs
from octtwisted._core.config import TurretConfig
from octtwisted._core.messages import Result
from octtwisted._core.thresholds import evaluate
from octtwisted._stats import report
from octtwisted._stats.results_file import IncompleteFile, ResultsFile, join_parts
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import RunStats, Summary
from octtwisted._stats.timeline import Tick, Timeline

#: How many error texts the report lists.
REPORT_ERRORS = 20

#: Most stages the report's settings list one by one.
REPORT_STAGES = 12


@attrs.frozen(kw_only=True)
class OutputSettings:
    """
    :ivar version: the turret's version, for the report.
    :ivar report: ``--report``: where the HTML report goes, or None.
    :ivar results: ``--results``: where the results go, or None.
    :ivar per_run_names: name each run's files apart (HQ mode: a turret
        makes many runs): ``report.html`` becomes
        ``report-20261201T152651Z-1.html``, with the run's start (UTC) and
        number.
    :ivar duration: the configured duration, for the report (None: until
        stopped).
    :ivar mode: ``standalone`` or ``HQ``, for the report.
    :ivar results_from_frames: the results file is made from the frames
        sent to the HQ, given to :meth:`RunOutputs.frames_sent` a batch at
        a time (obeying an HQ, every result is already one), not from the
        results.
    :ivar results_parts: with ``--processes``, the results file is made
        of the parts this many worker processes write
        (:func:`~octtwisted._stats.results_file.results_part`), joined at
        the end of the run; 0: this process writes it.
    """

    version: str
    report: Path | None = None
    results: Path | None = None
    per_run_names: bool = False
    duration: float | None = None
    mode: str = "standalone"
    results_from_frames: bool = False
    results_parts: int = 0


@attrs.define
class RunFiles:
    """
    The files of a run: those written, and those that could not be
    written whole (a full disk), with why.
    """

    written: list[Path] = attrs.Factory(list)
    incomplete: dict[Path, str] = attrs.Factory(dict)


class StatusLine(Protocol):
    def update(self, tick: Tick) -> None: ...

    def follow(self, in_flight: Callable[[], int], stopping: Callable[[], bool]) -> None: ...

    def close(self) -> None: ...


def run_path(path: Path, started: float, number: int) -> Path:
    """
    ``path`` with the run's UTC start time and number before the extension.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    return path.with_name(f"{path.stem}-{stamp}-{number}{path.suffix}")


class RunOutputs(Service):
    """
    :param run_in_thread: runs a function in a worker thread (default: the
        reactor's thread pool); tests pass a synchronous one.
    :param wall_clock: Unix time now (for file names and the report).
    """

    log = logs.logger(logs.REPORT)

    def __init__(
        self,
        *,
        config: TurretConfig,
        settings: OutputSettings,
        clock: IReactorTime,
        turret_id: str,
        status_line: StatusLine | None = None,
        run_in_thread: Callable[..., Deferred[Any]] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._settings = settings
        self._clock = clock
        self._turret_id = turret_id
        self._status_line = status_line
        self._run_in_thread = run_in_thread or threads.deferToThread
        self._wall_clock = wall_clock
        self._runs = 0
        self._started = 0.0
        #: the run under way's statistics and open-model starts
        self._stats: tuple[RunStats, StartStats | None] | None = None
        self._timeline: Timeline | None = None
        self._results: ResultsFile | None = None
        #: the open results file's frame writer (results_from_frames)
        self._write_frames: Callable[[list[bytes]], None] | None = None
        self._pending: list[Deferred[Any]] = []
        #: called with every result while a run writes a results file
        self.on_result: Callable[[Result], None] | None = None
        self._files = RunFiles()

    @property
    def written(self) -> list[Path]:
        """The files written by the last run."""
        return self._files.written

    @property
    def incomplete(self) -> dict[Path, str]:
        """The files of the last run that could not be written whole, and why."""
        return self._files.incomplete

    @property
    def copies_frames(self) -> bool:
        """
        The results file is made from the frames sent: plug the sender's
        batches into :meth:`frames_sent`.
        """
        return self._settings.results is not None and self._settings.results_from_frames

    def frames_sent(self, frames: list[bytes]) -> None:
        """
        One batch of result frames as they go to the HQ (up to 64; a call
        per batch, never per result): written to the results file of the
        run under way, if one is open. The sender hands over a run's last
        frames when the run stops, before the turret closes it (and calls
        :meth:`run_ended`, which closes the file).
        """
        write = self._write_frames
        if write is not None:
            write(frames)

    @property
    def wants_timeline(self) -> bool:
        return self._settings.report is not None or self._status_line is not None

    def _path(self, path: Path) -> Path:
        if self._settings.per_run_names:
            return run_path(path, self._started, self._runs)
        return path

    def run_started(
        self,
        stats: RunStats,
        active: Callable[[], int],
        starts: StartStats | None = None,
        in_flight: Callable[[], int] | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        """
        A run starts: ``stats`` will see every result; ``active`` counts
        the cannons firing; ``starts`` counts the open model's starts (None
        in the closed model); ``in_flight`` counts the transactions in
        flight and ``stopping`` says whether the stop began (for the live
        line).
        """
        self._runs += 1
        self._started = self._wall_clock()
        self._stats = (stats, starts)
        self._files = RunFiles()
        if self.wants_timeline:
            self._timeline = Timeline(self._clock, stats, active, starts=starts)
            if self._status_line is not None:
                if in_flight is not None:
                    self._status_line.follow(in_flight, stopping)
                self._timeline.on_tick(self._status_line.update)
            self._timeline.start()
        if self._settings.results is not None and not self._settings.results_parts:
            path = self._path(self._settings.results)
            frames = self._settings.results_from_frames
            self._results = ResultsFile(
                path, self._clock, run_in_thread=self._run_in_thread, frames=frames
            )
            if frames:
                self._write_frames = self._results.write_frames
            else:
                self.on_result = self._results.write

    def run_ended(self, summary: Summary, cpu: dict[str, Any] | None = None) -> Summary:
        """
        The run's summary: evaluate the thresholds, write the report, close
        the results file. Returns the summary with the thresholds.

        :param cpu: the turret's CPU samples for the report
            (:meth:`~octtwisted._stats.cpu.CPUSampler.to_dict`), if measured.
        """
        stats, starts = self._stats if self._stats is not None else (None, None)
        self._stats = None
        if self._config.thresholds and stats is not None:
            summary = attrs.evolve(
                summary,
                thresholds=evaluate(
                    self._config.thresholds,
                    stats,
                    transactions=summary.transactions,
                    errors=summary.errors,
                    duration=summary.firing_time,
                    starts=starts,
                ),
            )
            for note in dict.fromkeys(o.note for o in summary.thresholds if o.note):
                self.log.warn("threshold: {note}", note=note)
        timeline, self._timeline = self._timeline, None
        if timeline is not None:
            timeline.stop()
        if self._status_line is not None:
            self._status_line.close()
        results, self._results = self._results, None
        self.on_result = None
        self._write_frames = None
        if results is not None:
            self._track(results.close().addCallback(_whole, results), results.path)
        elif self._settings.results is not None and self._settings.results_parts:
            path = self._path(self._settings.results)
            self._track(self._run_in_thread(join_parts, path), path)
        if self._settings.report is not None and timeline is not None:
            began = self._clock.seconds()
            data = report.ReportData(
                title=f"Run report: {self._config.script} on {self._config.name}",
                settings=self._settings_rows(summary),
                summary=summary,
                timeline=timeline.to_dict(),
                top_errors=stats.top_errors(REPORT_ERRORS) if stats is not None else (),
                cpu=cpu,
            )
            path = self._path(self._settings.report)
            self._track(self._run_in_thread(_write_report, path, data), path, began)
        return summary

    def _settings_rows(self, summary: Summary) -> tuple[tuple[str, str], ...]:
        config = self._config
        duration = self._settings.duration
        rows = [
            ("Script", config.script),
            ("Turret", f"{config.name} ({self._turret_id})"),
            ("Mode", self._settings.mode),
            *_load_rows(config),
            ("Duration", f"{duration:g} s" if duration is not None else "until stopped"),
            ("Pacing", f"{config.pacing:g} s"),
            ("Transaction timeout",
             "none" if config.transaction_timeout is None else f"{config.transaction_timeout:g} s"),
            ("Started", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self._started))),
            ("oct-twisted", self._settings.version),
        ]
        if self._runs > 1 or self._settings.per_run_names:
            rows.insert(3, ("Run", f"#{self._runs}"))
        if config.warnings:
            rows.append(("Config warnings", "; ".join(config.warnings)))
        return tuple(rows)

    def _track(self, d: Deferred[Any], path: Path, began: float | None = None) -> None:
        files = self._files  # this run's, even if the next one starts first

        def done(_: object) -> None:
            files.written.append(path)
            if began is not None:
                self.log.info(
                    "report written to {path} in {seconds:.2f}s",
                    path=str(path),
                    seconds=self._clock.seconds() - began,
                )
            else:
                self.log.info("results written to {path}", path=str(path))

        def failed(failure: Any) -> None:
            error = failure.value
            if isinstance(error, IncompleteFile):
                files.incomplete[path] = error.problem
                if error.logged:
                    return
                self.log.error(
                    "the file {path} is incomplete: {problem}", path=str(path), problem=error.problem
                )
                return
            problem = getattr(error, "strerror", None) or str(error)
            files.incomplete[path] = problem
            self.log.error(
                "cannot write {path}: {problem}; the file is incomplete",
                path=str(path),
                problem=problem,
            )

        def forget(result: object) -> object:
            if d in self._pending:
                self._pending.remove(d)
            return result

        d.addCallbacks(done, failed)
        self._pending.append(d)
        d.addBoth(forget)

    def idle(self) -> Deferred[None]:
        """
        Fires when every file handed over so far is written.
        """
        if not self._pending:
            return defer.succeed(None)
        waiting = defer.DeferredList(list(self._pending), consumeErrors=True)
        return waiting.addCallback(lambda _: None)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self.idle()


def _load_rows(config: TurretConfig) -> list[tuple[str, str]]:
    """
    The settings rows of the load (see :doc:`load`): cannons, and the
    rampup, arrival rate and stages that are used.
    """
    rate = config.arrival_rate
    if rate is None:
        rows = [("Load model", "closed" + (" (stages of active cannons)" if config.stages else ""))]
        rows.append(("Cannons", f"{config.cannons:,}"))
    else:
        rows = [("Load model", "open (arrival rate)")]
        rows.append(("Cannons", f"{config.cannons:,} (the most transactions in flight)"))
        start = " at the start, then the stages" if config.stages else ""
        rows.append(("Arrival rate", f"{rate:,g} transactions/s{start}"))
    if config.stages:
        unit = "/s" if rate is not None else " cannons"
        shown = [f"{s.duration:g} s to {s.target:,g}{unit}" for s in config.stages[:REPORT_STAGES]]
        more = len(config.stages) - len(shown)
        rows.append(("Stages", "; ".join(shown) + (f"; and {more} more" if more else "")))
        rows.append(("Rampup", "not used (stages)"))
    else:
        ramped = " (ramps the rate from 0)" if rate is not None and config.rampup else ""
        rows.append(("Rampup", f"{config.rampup:g} s{ramped}"))
    return rows


def _whole(_: object, results: ResultsFile) -> None:
    """
    After the results file closed: :class:`IncompleteFile` if a write
    failed (already logged by the file).
    """
    if results.problem is not None:
        raise IncompleteFile(results.problem, logged=True)


def _write_report(path: Path, data: report.ReportData) -> None:
    path.write_text(report.render(data), encoding="utf-8", errors="backslashreplace")
