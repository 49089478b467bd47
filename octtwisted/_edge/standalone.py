"""
Standalone runs: the turret fires on its own, without an HQ.

``twistd -n oct-turret -c config.json --standalone --duration 30`` starts
firing at once, stops after the duration (or on SIGINT/SIGTERM) as on an HQ
``stop``, prints the run's summary and exits: 0, or 1 if no transaction
succeeded, or 74 if a file of the run (``--results``, ``--report``,
``--summary-json``) could not be written whole, or 99 if a threshold
failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from octtwisted._core import logs
from octtwisted._core.deferreds import cancel_call
from octtwisted._firing.lifecycle import State
from octtwisted._firing.turret import TurretService
from octtwisted._stats.outputs import RunOutputs
from octtwisted._stats.summary import Summary
from octtwisted._stats.table import format_table

#: Exit status of a standalone run in which every transaction failed.
EXIT_ALL_FAILED = 1

#: Exit status of a standalone run in which a threshold failed (as k6's).
EXIT_THRESHOLDS_FAILED = 99

#: Exit status of a standalone run of which a file could not be written
#: whole (a full disk): ``EX_IOERR`` of ``sysexits.h``.
EXIT_FILES_INCOMPLETE = 74


def exit_status(summary: Summary | None, incomplete: bool = False) -> int:
    """
    :data:`EXIT_ALL_FAILED` if no transaction succeeded, else
    :data:`EXIT_FILES_INCOMPLETE` if a file of the run is ``incomplete``,
    else :data:`EXIT_THRESHOLDS_FAILED` if a threshold failed, else 0.
    """
    if summary is None or summary.transactions <= summary.errors:
        return EXIT_ALL_FAILED
    if incomplete:
        return EXIT_FILES_INCOMPLETE
    if summary.thresholds_failed:
        return EXIT_THRESHOLDS_FAILED
    return 0


def json_safe(value: Any) -> Any:
    """
    ``value`` (a summary's dict) with every lone surrogate of its texts
    (invalid UTF-8 a script decoded with ``surrogateescape``) written as
    the text ``\\udcff``: the JSON is then valid for any reader.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class StandaloneRun(Service):
    """
    Starts firing once the reactor runs and ends the run after
    ``duration`` seconds (None: until the process is told to stop).

    :param when_running: calls a function once the reactor is running
        (``reactor.callWhenRunning``). twistd starts the services before it
        runs the reactor, which installs the SIGINT and SIGTERM handlers as
        it starts: a run that began in ``startService`` could be ended by a
        signal's default action, with no summary and no results written.
    :param exit: ends the process with a status.
    :param out: where the summary table is printed.
    """

    log = logs.logger(logs.STANDALONE)

    def __init__(
        self,
        *,
        turret: TurretService,
        clock: IReactorTime,
        when_running: Callable[[Callable[[], None]], object],
        duration: float | None,
        exit: Callable[[int], None],
        summary_json: Path | None = None,
        out: TextIO | None = None,
        outputs: RunOutputs | None = None,
    ) -> None:
        self._turret = turret
        self._clock = clock
        self._when_running = when_running
        self._duration = duration
        self._exit = exit
        self._summary_json = summary_json
        self._out = out
        self._outputs = outputs
        self._timer: IDelayedCall | None = None
        self._ending: Deferred[None] | None = None
        #: the run's exit status, once it has ended
        self.exit_code: int | None = None

    def startService(self) -> None:
        super().startService()
        self._when_running(self._open_fire)

    def _open_fire(self) -> None:
        if not self.running or self._ending is not None:
            return  # stopped before the reactor ran
        self._turret.start_firing()
        if self._duration is not None:
            self._timer = self._clock.callLater(self._duration, self._duration_over)

    def _duration_over(self) -> None:
        self._timer = None
        self.log.info("duration of {duration}s reached", duration=self._duration)
        self.end_run().addCallback(self._exit)

    def end_run(self) -> Deferred[int]:
        """
        Stop firing (as on an HQ ``stop``), print and save the summary.

        :return: fires with the exit status.
        """
        if self._ending is None:
            cancel_call(self._timer)
            if self._turret.state is State.RUNNING:
                d: Deferred[Any] = self._turret.cease_fire()
            else:
                d = defer.succeed(None)
            if self._outputs is not None:
                d.addCallback(lambda _: self._outputs.idle() if self._outputs else None)
            self._ending = d.addCallback(lambda _: self._report())
        ended: Deferred[int] = Deferred()

        def tell(result: object) -> object:
            ended.callback(self.exit_code if self.exit_code is not None else EXIT_ALL_FAILED)
            return result

        self._ending.addBoth(tell)
        return ended

    def _report(self) -> None:
        summary = self._turret.last_summary
        out = self._out if self._out is not None else sys.__stdout__
        incomplete = dict(self._outputs.incomplete) if self._outputs is not None else {}
        if summary is not None and out is not None:
            out.write("\n" + format_table(summary) + "\n")
            warnings = self._turret.config.warnings
            if warnings:
                out.write("Config warnings:\n" + "".join(f"  {w}\n" for w in warnings) + "\n")
            out.flush()
            if self._summary_json is not None:
                problem = self._write_json(summary, incomplete)
                if problem is not None:
                    incomplete[self._summary_json] = problem
            if self._outputs is not None:
                written = self._outputs.written
                reports = [p for p in written if p.suffix.lower() in (".html", ".htm")]
                for path in [p for p in written if p not in reports]:
                    out.write(f"Results: {path}\n")
                for path in reports:
                    out.write(f"Report: {path}\n")
            for path, problem in incomplete.items():
                out.write(f"INCOMPLETE: {path}: {problem}\n")
            out.flush()
        self.exit_code = exit_status(summary, bool(incomplete))
        if self.exit_code == EXIT_FILES_INCOMPLETE:
            self.log.error(
                "{count} file(s) of the run could not be written whole: {paths}",
                count=len(incomplete),
                paths=", ".join(str(p) for p in incomplete),
            )
        elif self.exit_code == EXIT_THRESHOLDS_FAILED:
            assert summary is not None
            self.log.error(
                "{failed} of {count} thresholds failed: {expressions}",
                failed=len(summary.thresholds_failed),
                count=len(summary.thresholds),
                expressions="; ".join(
                    f"{o.metric}: {o.expression}" for o in summary.thresholds_failed
                ),
            )
        elif self.exit_code:
            self.log.error("no transaction succeeded")

    def _write_json(self, summary: Summary, incomplete: dict[Path, str]) -> str | None:
        """
        Write the summary as JSON, with the run's ``incomplete_files`` (each
        ``{"path": ..., "problem": ...}``); return why it could not be, or
        None.
        """
        assert self._summary_json is not None
        data = summary.to_dict()
        data["incomplete_files"] = [
            {"path": str(path), "problem": problem} for path, problem in incomplete.items()
        ]
        try:
            self._summary_json.write_text(json.dumps(json_safe(data), indent=2) + "\n")
        except OSError as e:
            problem = e.strerror or str(e)
            self.log.error(
                "cannot write the summary to {path}: {problem}",
                path=str(self._summary_json),
                problem=problem,
            )
            return problem
        return None

    def stopService(self) -> Deferred[None]:
        """
        The process is stopping (SIGINT, SIGTERM, or the end of the run):
        end the run first, and make its status the process's.
        """
        super().stopService()
        d = self.end_run()

        def keep_status(code: int) -> None:
            self._exit(code)

        return d.addCallback(keep_status)
