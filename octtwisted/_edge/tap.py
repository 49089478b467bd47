"""
``twistd oct-turret``: command-line options and the service tree.

:class:`Options` validates everything (the config file, the script) before
anything starts; a problem ends the process with one line on stderr and exit
status 2, no traceback, no socket opened. :func:`makeService` composes the
turret from small services.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any, NoReturn

from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer, error
from twisted.internet.defer import Deferred
from twisted.python import usage

from octtwisted._core.clocks import Clocks
from octtwisted._core.config import ConfigError, TurretConfig, load_config
from octtwisted._edge.package import ExtractedPackage, PackageError
from octtwisted._scripts.loading import ScriptError, is_blocking, load_transaction_class
from octtwisted._firing.watchdog import ReactorWatchdog
from octtwisted._firing.steps import ReactorStepCaller, StepCaller, ThreadPoolService, ThreadStepCaller
from octtwisted._core import logs

#: Exit status for a bad command line, config or script.
EXIT_BAD_INPUT = 2


def fail(message: str) -> NoReturn:
    """
    Stop at start: one line naming the problem, no traceback.
    """
    print(f"oct-turret: error: {message}", file=sys.stderr)
    sys.stderr.flush()
    raise SystemExit(EXIT_BAD_INPUT)


class Options(usage.Options):
    synopsis = (
        "(-c CONFIG.json | --tar PACKAGE.tar.gz) [--uuid ID] [--report PATH.html] "
        "[--results PATH.csv|.jsonl] [--standalone [--duration S] [--summary-json PATH]]"
    )
    longdesc = (
        "Run an OCT turret: it connects to the HQ named in the config, "
        "announces itself, and fires its cannons when the HQ says start."
    )
    optParameters = [
        ["config", "c", None, "The turret's config.json (as written by OCT)."],
        ["tar", None, None, "A turret package made by `oct pack-turrets` (instead of -c)."],
        ["uuid", None, None, "The turret's id (default: a new random uuid4)."],
        ["duration", None, None, "Standalone: seconds to fire (default: until SIGINT/SIGTERM)."],
        ["summary-json", None, None, "Standalone: also write the run's summary to this JSON file."],
        ["report", None, None, "Write an HTML report of the run to this file (with an HQ: one "
         "file per run, named PATH-<UTC start>-<run>.html)."],
        ["results", None, None, "Write every result to this file: .csv or .jsonl (with an HQ: "
         "one file per run, named like --report's)."],
    ]
    optFlags = [
        ["standalone", None, "Fire at once, without an HQ (the hq_* keys are not needed), "
         "then print a summary."],
    ]

    turret_config: TurretConfig
    transaction_class: type
    #: the extracted turret package (``--tar``), removed when the turret exits
    package: ExtractedPackage | None = None

    def postOptions(self) -> None:
        if self["config"] and self["tar"]:
            fail("-c and --tar exclude each other: give one")
        if not self["config"] and not self["tar"]:
            fail("a config file is required: -c config.json (or --tar PACKAGE.tar.gz)")
        turret_id = self["uuid"]
        if turret_id is not None and (not turret_id or any(c.isspace() for c in turret_id)):
            fail(f"--uuid must be a non-empty id without spaces, got {turret_id!r}")
        if turret_id is None:
            self["uuid"] = str(uuidlib.uuid4())
        standalone = bool(self["standalone"])
        if not standalone and (self["duration"] is not None or self["summary-json"] is not None):
            fail("--duration and --summary-json go with --standalone")
        if self["duration"] is not None:
            try:
                duration = float(self["duration"])
            except ValueError:
                duration = -1.0
            if not duration > 0 or duration == float("inf"):
                fail(f"--duration must be a number of seconds > 0, got {self['duration']!r}")
            self["duration"] = duration
        from octtwisted._edge.outputs_options import check_output_paths

        problem = check_output_paths(self["report"], self["results"])
        if problem:
            fail(problem)
        try:
            config_path = self["config"]
            if self["tar"]:
                self.package = ExtractedPackage(self["tar"])
                config_path = self.package.open()
            self.turret_config = load_config(config_path, standalone=standalone)
            self.transaction_class = load_transaction_class(self.turret_config.script_path)
        except (ConfigError, ScriptError, PackageError) as e:
            if self.package is not None:
                self.package.close()
            fail(str(e))


class SequentialMultiService(MultiService):
    """
    A MultiService that stops its children one at a time, last first,
    each after the one before it has finished stopping.

    (``MultiService`` stops them all at once: the HQ link would close its
    sockets while the turret is still sending its last results.)
    """

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        d: Deferred[None] = defer.succeed(None)
        for child in reversed(list(self)):
            d.addBoth(lambda _, child=child: child.stopService())
        return d


class PackageCleanup(Service):
    """
    Removes the extracted turret package when the turret stops (it is the
    first service, so it stops last).
    """

    log = logs.logger(logs.PACKAGE)

    def __init__(self, package: ExtractedPackage, archive: str) -> None:
        self._package = package
        self._archive = archive
        atexit.register(package.close)

    def startService(self) -> None:
        super().startService()
        self.log.info(
            "running turret package {archive} from {folder}",
            archive=self._archive,
            folder=str(self._package.directory),
        )

    def stopService(self) -> None:
        super().stopService()
        self._package.close()


class ProcessExit:
    """
    Ends the process with a chosen exit status.

    twistd exits 0 after a reactor stop, and re-raises a signal that stopped
    it; when a status was chosen (``kill``: 0, an abort: 70, the end of a
    standalone run) the process ends with it right after the reactor's
    shutdown, once every service has stopped and the logs are flushed.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self.code: int | None = None
        reactor.addSystemEventTrigger("before", "shutdown", self._second_signal_exits)
        reactor.addSystemEventTrigger("after", "shutdown", self._after_shutdown)

    def _second_signal_exits(self) -> None:
        """
        Once shutting down, a second SIGINT or SIGTERM ends the process at
        once (with 128 + the signal's number).
        """

        def now(number: int, frame: object) -> None:
            sys.stderr.write(f"oct-turret: signal {number} while stopping: exiting now\n")
            sys.stderr.flush()
            atexit._run_exitfuncs()  # e.g. remove an extracted --tar package
            os._exit(128 + number)

        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(number, now)
            except ValueError:  # not the main thread (tests)
                pass

    def __call__(self, code: int) -> None:
        self.code = code
        try:
            self._reactor.stop()
        except error.ReactorNotRunning:
            pass

    def _after_shutdown(self) -> None:
        if self.code == 0:
            # A clean end: let twistd finish normally (profiles are saved,
            # the log closed), and not re-raise a signal that ended the run.
            if getattr(self._reactor, "_exitSignal", None) is not None:
                self._reactor._exitSignal = None
        elif self.code is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            atexit._run_exitfuncs()
            os._exit(self.code)


def step_caller(blocking: bool, cannons: int, reactor: Any, parent: MultiService) -> StepCaller:
    """
    How the script's steps are called; a blocking script gets a thread pool
    service under ``parent``.
    """
    if not blocking:
        return ReactorStepCaller()
    pool = ThreadPoolService(cannons)
    pool.setServiceParent(parent)
    return ThreadStepCaller(reactor, pool.pool)


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    from octtwisted._firing.turret import TurretService

    config = options.turret_config
    top = SequentialMultiService()
    if options.package is not None:
        PackageCleanup(options.package, options["tar"]).setServiceParent(top)
    exit = ProcessExit(reactor)
    sink: Any
    if options["standalone"]:
        from octtwisted._hq.localsink import LocalSink

        link = None
        sink = LocalSink()
    else:
        from octtwisted._hq.link import HQLink

        link = sink = HQLink(
            order_address=config.order_address,
            result_address=config.result_address,
            uuid=options["uuid"],
            reactor=reactor,
            linger=config.linger,
        )
        link.setServiceParent(top)
    steps = step_caller(
        is_blocking(options.transaction_class, config.blocking),
        config.cannons,
        reactor,
        top,
    )
    from octtwisted._edge.outputs_options import make_outputs

    outputs = make_outputs(options, reactor, link)
    if outputs is not None:
        outputs.setServiceParent(top)  # before the turret: it stops after it
        config = outputs.config
    turret = TurretService(
        config=config,
        uuid=options["uuid"],
        transaction_class=options.transaction_class,
        steps=steps,
        orders=link,
        sink=sink,
        clocks=Clocks(reactor=reactor),
        exit=exit,
        outputs=outputs,
    )
    turret.setServiceParent(top)
    ReactorWatchdog(reactor, time.monotonic).setServiceParent(top)
    if options["standalone"]:
        from octtwisted._edge.standalone import StandaloneRun

        turret.summary_table_in_log = False
        summary_json = options["summary-json"]
        StandaloneRun(
            turret=turret,
            clock=reactor,
            duration=options["duration"],
            exit=exit,
            summary_json=Path(summary_json).absolute() if summary_json else None,
            outputs=outputs,
        ).setServiceParent(top)
    return top
