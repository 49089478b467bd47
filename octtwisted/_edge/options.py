"""
The ``twistd oct-turret`` command line.

:class:`Options` validates everything (the command line, the config file,
the script, a ``--tar`` package) before anything starts; a problem ends the
process with one line on stderr and exit status 2, no traceback, no socket
opened. It decides every setting once: the config the turret runs with
(:attr:`Options.turret_config`), the live line and the outputs'
settings; ``makeService`` hands each part what it needs.
"""

from __future__ import annotations

import copy
import sys
import uuid as uuidlib
from pathlib import Path
from typing import NoReturn

import attrs
from twisted.python import usage

from octtwisted import __version__
from octtwisted._core.config import ConfigError, TurretConfig, check_blocking_cannons, load_config
from octtwisted._core.processes import Processes, ProcessesError, parse_processes, resolve_processes
from octtwisted._core.share import LoadShare
from octtwisted._edge.metrics import MetricsAddressError, MetricsSettings, parse_metrics_address, port_problem
from octtwisted._edge.outputs_options import check_output_paths, live_status_wanted, output_settings
from octtwisted._edge.package import ExtractedPackage, PackageError
from octtwisted._scripts.loading import ScriptError, decide, load_transaction_class
from octtwisted._stats.outputs import OutputSettings
from octtwisted._stats.results_file import results_part

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
        "[--results PATH.csv|.jsonl] [--processes N|auto] [--metrics [HOST:]PORT] "
        "[--standalone [--duration S] [--summary-json PATH]]"
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
        ["processes", None, None, "Fire from this many processes (or 'auto': one per CPU this "
         "process may use); default: the config's 'processes', else 1."],
        ["metrics", None, None, "Serve Prometheus metrics at http://HOST:PORT/metrics "
         "(PORT alone: on 127.0.0.1); default: the config's 'metrics', else none."],
        ["worker", None, None, "Internal: run as worker K of N of a turret's --processes "
         "(spawned by the turret itself, never by hand)."],
    ]
    optFlags = [
        ["standalone", None, "Fire at once, without an HQ (the hq_* keys are not needed), "
         "then print a summary."],
    ]

    #: the config the turret runs with (the live line turns the progress
    #: lines off)
    turret_config: TurretConfig
    transaction_class: type
    #: show the live status line (a standalone run in a terminal)
    live_status: bool = False
    #: what ``--report`` and ``--results`` ask for
    output_settings: OutputSettings
    #: the extracted turret package (``--tar``), removed when the turret exits
    package: ExtractedPackage | None = None
    #: how many processes fire (1: this one alone)
    processes: int = 1
    #: the shares of the load, one per worker process (``processes > 1``)
    shares: tuple[LoadShare, ...] = ()
    #: a worker process's share of the load (``--worker``), else None
    worker_share: LoadShare | None = None
    #: said once at start: fewer processes than asked for
    processes_note: str | None = None
    #: the config file the turret runs (extracted from ``--tar``, if given)
    config_path: Path
    #: where ``--metrics`` (or the config's ``metrics``) serves, else None
    metrics: MetricsSettings | None = None

    @property
    def standalone_duration(self) -> float | None:
        """
        How long a standalone run fires: ``--duration``, or without it the
        stages' length when the config has stages, or None (until told to
        stop). The one place that decides it, for the run, its report and
        its live line.
        """
        return self["duration"] or self.turret_config.load.stages_duration or None

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
        problem = check_output_paths(self["report"], self["results"])
        if problem:
            fail(problem)
        try:
            config_path = self["config"]
            if self["tar"]:
                self.package = ExtractedPackage(self["tar"])
                config_path = self.package.open()
            self.turret_config = load_config(config_path, standalone=standalone)
            self.config_path = self.turret_config.config_path
            self._decide_processes(standalone)
            self._decide_metrics()
            if not standalone:
                _check_addresses(self.turret_config)
            self.transaction_class = load_transaction_class(self.turret_config.script_path)
            check_blocking_cannons(
                self.turret_config,
                decide(self.transaction_class, self.turret_config.blocking).blocking,
                self.worker_share.count if self.worker_share is not None else self.processes,
            )
            # Nothing above opened a connection: the HQ's sockets connect
            # when the service tree starts, once everything was checked.
        except (ConfigError, ScriptError, PackageError) as e:
            if self.package is not None:
                self.package.close()
            fail(str(e))
        self._decide_outputs(standalone)

    def _decide_processes(self, standalone: bool) -> None:
        """
        How many processes fire: ``--processes`` wins over the config's
        ``processes``; never more than the cannons. A worker (``--worker
        K/N``) fires its share alone: no progress lines, thresholds or
        report of its own (the main process merges and judges them).
        """
        config = self.turret_config
        worker = self["worker"]
        if worker is not None:
            self.worker_share = _worker_share(worker, config.cannons)
            self.turret_config = attrs.evolve(config, progress_interval=0.0, thresholds=())
            if self["report"] is not None:
                fail("--worker writes no report")
            return
        wanted: Processes = config.processes
        if self["processes"] is not None:
            try:
                wanted = parse_processes(self["processes"])
            except ProcessesError as e:
                fail(f"--processes {e}")
        asked = resolve_processes(wanted)
        self.processes = min(asked, config.cannons)
        if self.processes < asked:
            self.processes_note = (
                f"{asked} processes asked for, but the config has {config.cannons} "
                f"cannon{'s' if config.cannons > 1 else ''}: firing from "
                f"{self.processes} process{'es' if self.processes > 1 else ''}"
            )
        if self.processes > 1:
            self.shares = LoadShare.split(config.cannons, self.processes)
            if not standalone and self["results"] is not None:
                fail("--results with --processes > 1 is for standalone runs; obeying an HQ, "
                     "the HQ keeps every result (or use --processes 1)")

    def _decide_metrics(self) -> None:
        """
        Where the metrics are served: ``--metrics`` wins over the config's
        ``metrics``. A worker serves none (the main process serves the
        whole turret's). The port is tried now: one in use stops the
        turret before anything starts.
        """
        value = self["metrics"]
        where = "--metrics"
        if value is None and "metrics" in self.turret_config.raw:
            value = self.turret_config.raw["metrics"]
            where = f"{self.turret_config.config_path}: key 'metrics'"
        if value is None or self.worker_share is not None:
            return
        try:
            settings = parse_metrics_address(value)
        except MetricsAddressError as e:
            raise ConfigError(f"{where} {e}")
        problem = port_problem(settings)
        if problem is not None:
            raise ConfigError(f"{where}: {problem}")
        self.metrics = settings

    def _decide_outputs(self, standalone: bool) -> None:
        if self.worker_share is not None:
            self.live_status = False
            self.output_settings = output_settings(
                report=None, results=self["results"], standalone=True, duration=None,
                version=__version__,
            )
            return
        self.live_status = live_status_wanted(standalone)
        if self.live_status:
            # The live line takes the place of the progress log lines.
            self.turret_config = attrs.evolve(self.turret_config, progress_interval=0.0)
        self.output_settings = output_settings(
            report=self["report"],
            results=self["results"],
            standalone=standalone,
            duration=self.standalone_duration,
            version=__version__,
            results_parts=self.processes if self.processes > 1 else 0,
        )

    def as_worker(self, share: LoadShare, generation: int) -> "Options":
        """
        The options of the worker process for ``share`` forked from this
        (the main) process: what ``worker_argv`` would make the worker
        decide, without loading anything again.
        """
        worker = copy.copy(self)
        worker.opts = worker  # (usage.Options: its values are itself)
        worker["worker"] = f"{share.index}/{share.count}"
        worker["report"] = None
        worker["metrics"] = None
        results = self.output_settings.results
        worker["results"] = str(results_part(results, share.index, generation)) if results is not None else None
        worker.package = None
        worker.processes = 1
        worker.shares = ()
        worker.processes_note = None
        worker.metrics = None
        worker.worker_share = share
        worker.turret_config = attrs.evolve(self.turret_config, progress_interval=0.0, thresholds=())
        worker._decide_outputs(bool(self["standalone"]))
        return worker

    def worker_argv(self, share: LoadShare, generation: int = 0) -> list[str]:
        """
        The command line of the worker process for ``share``: this turret,
        its config, uuid and mode, ``--worker K/N``, and its part of the
        results file (joined into one at the end of the run; the
        ``generation``-th process of the share writes a part of its own).
        """
        argv = [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "--nodaemon", "--pidfile", "", "oct-turret",
            "-c", str(self.config_path),
            "--uuid", self["uuid"],
            "--worker", f"{share.index}/{share.count}",
        ]
        if self["standalone"]:
            argv.append("--standalone")
        results = self.output_settings.results
        if results is not None:
            argv += ["--results", str(results_part(results, share.index, generation))]
        return argv


def _worker_share(text: str, cannons: int) -> LoadShare:
    """
    The share of ``--worker K/N``: the same split as the main process's.
    """
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count) <= cannons):
        fail(f"--worker must be K/N with 0 <= K < N <= cannons, got {text!r}")
    return LoadShare.split(cannons, int(count))[int(index)]


def _check_addresses(config: TurretConfig) -> None:
    """
    Check the HQ's addresses as ZeroMQ's connect does, so that none is
    refused later, at connect, with a traceback; without a socket, so that
    a turret that is refused at start never connects to the HQ.

    :raise ConfigError: naming the address and ZeroMQ's reason.
    """
    from octtwisted._hq.sockopts import refused_address

    for address in (config.order_address, config.result_address):
        problem = refused_address(address, config.hq_ipv6)
        if problem is not None:
            raise ConfigError(
                f"{config.config_path}: key 'hq_address': ZeroMQ refuses the "
                f"address {address!r} ({problem})"
            )
