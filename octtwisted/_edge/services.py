"""
The service tree of ``twistd oct-turret``: :func:`makeService` composes the
turret from small services, each given its collaborators.

Stopping goes last first, one at a time (:class:`SequentialMultiService`):
the standalone run ends the run, the turret sends its final status, the
run outputs finish their files, the cannons' threads stop, the HQ link
flushes and closes its sockets, and the extracted package is removed last.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.interfaces import ResultSink
from octtwisted._edge.exits import ExitCleanups, ProcessExit
from octtwisted._edge.options import Options
from octtwisted._edge.outputs_options import make_outputs
from octtwisted._edge.package import ExtractedPackage
from octtwisted._firing.gcpolicy import CalmGC
from octtwisted._edge.fleet import Fleet, Spawner, StartWorker
from octtwisted._edge.forked import ZygoteClient, ZygoteSpawner
from octtwisted._edge.zygote import become_worker, fork_safe, fork_zygote
from octtwisted._firing.fleetrun import fleet_runs
from octtwisted._edge.metrics import SinkProbes, TurretCollector, TurretProbes
from octtwisted._edge.metrics_web import MetricsService
from octtwisted._firing.runkeeper import FiringRun, MakeRun, local_runs
from octtwisted._firing.steps import make_cannon_factory
from octtwisted._firing.watchdog import ReactorWatchdog
from octtwisted._stats.cpu import own_cpu, processes_cpu
from octtwisted._scripts.loading import decide
from octtwisted._stats.results_file import part_files

#: Seconds a worker may take to answer ``stop`` beyond its stop timeout and
#: the linger of its flush (the cancel grace, closing its part of the
#: results file).
STOP_MARGIN = 5.0

if TYPE_CHECKING:
    from octtwisted._hq.link import HQLink
    from octtwisted._hq.localsink import LocalSink


class SequentialMultiService(MultiService):
    """
    A MultiService that stops its children one at a time, last first,
    each after the one before it has finished stopping.

    (``MultiService`` stops them all at once: the HQ link would close its
    sockets while the turret is still sending its last results.)
    """

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        d: Deferred[Any] = defer.succeed(None)
        for child in reversed(list(self)):
            d.addBoth(_stop_next, child)
        return d


def _stop_next(_: object, child: IService) -> Any:
    return child.stopService()


class PackageCleanup(Service):
    """
    Removes the extracted turret package when the turret stops (it is the
    first service, so it stops last), or however the process ends.
    """

    log = logs.logger(logs.PACKAGE)

    def __init__(self, package: ExtractedPackage, archive: str, cleanups: ExitCleanups) -> None:
        self._package = package
        self._archive = archive
        cleanups.add(package.close)

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


def makeService(options: Options) -> IService:
    """
    The service tree of the options. Each setting was decided once, by
    :class:`Options`; each part is given what it needs of them, and the
    parts are connected here: the HQ link is the turret's order source and
    result sink, and gives the batches of frames it sends to the results
    file (:meth:`RunOutputs.frames_sent`). With ``--processes`` the runs
    are fired by a :class:`~octtwisted._edge.fleet.Fleet` of worker
    processes; a worker (``--worker``) has a tree of its own
    (:func:`worker_service`).
    """
    from twisted.internet import reactor

    from octtwisted._firing.turret import TurretService

    if options.worker_share is not None:
        return worker_service(options)
    # First, before anything starts a thread, a socket or a file of the run.
    zygote = _zygote(options, reactor) if options.processes > 1 else None
    config = options.turret_config
    uuid = options["uuid"]
    top = SequentialMultiService()
    cleanups = ExitCleanups()
    if options.package is not None:
        PackageCleanup(options.package, options["tar"], cleanups).setServiceParent(top)
    exit = ProcessExit(reactor, cleanups)
    watchdog = ReactorWatchdog(reactor, time.monotonic)
    metrics: TurretCollector | None = None
    if options.metrics is not None:
        metrics = TurretCollector(
            name=config.name,
            uuid=uuid,
            probes=TurretProbes(state=lambda: turret.state, reactor_lag=lambda: watchdog.lag),
        )
        # First: it stops last, serving the turret's last state until then.
        MetricsService(options.metrics, metrics, reactor).setServiceParent(top)
    outputs = make_outputs(
        config=config,
        settings=options.output_settings,
        clock=reactor,
        turret_id=uuid,
        live=options.live_status,
    )
    link: HQLink | None = None
    sink: ResultSink
    if options["standalone"]:
        from octtwisted._hq.localsink import LocalSink

        sink = LocalSink()
    else:
        frames_sent = outputs.frames_sent if outputs is not None and outputs.copies_frames else None
        link = sink = _hq_link(config, uuid, reactor, frames_sent)
        link.setServiceParent(top)
    clocks = Clocks(reactor=reactor)
    make_run: MakeRun
    if options.processes_note is not None:
        logs.logger(logs.PROCESSES).warn("{note}", note=options.processes_note)
    when_running: Callable[[Callable[[], None]], object] = reactor.callWhenRunning
    if options.processes > 1:
        fleet = _fleet(options, reactor, exit, zygote)
        fleet.setServiceParent(top)  # before the turret: it stops after it
        make_run = fleet_runs(
            config=config, workers=fleet, clocks=clocks, outputs=outputs,
            cpu=processes_cpu(fleet.worker_pids),
        )
        when_running = _when_ready(reactor.callWhenRunning, fleet)
    else:
        steps = make_cannon_factory(decide(options.transaction_class, config.blocking), reactor, top)
        make_run = local_runs(
            config=config,
            transaction_class=options.transaction_class,
            steps=steps,
            clocks=clocks,
            sink=sink,
            gc=CalmGC(reactor),
            outputs=outputs,
            cpu=own_cpu,
        )
    if outputs is not None:
        outputs.setServiceParent(top)  # before the turret: it stops after it
    if metrics is not None:
        make_run = _watched_runs(make_run, metrics, _sink_probes(sink, link, options.processes))
    turret = TurretService(
        config=config,
        uuid=uuid,
        make_run=make_run,
        orders=link,
        sink=sink,
        clocks=clocks,
        exit=exit,
    )
    turret.setServiceParent(top)
    watchdog.setServiceParent(top)
    if options["standalone"]:
        from octtwisted._edge.standalone import StandaloneRun

        turret.summary_table_in_log = False
        summary_json = options["summary-json"]
        StandaloneRun(
            turret=turret,
            clock=reactor,
            when_running=when_running,
            duration=options.standalone_duration,
            exit=exit,
            summary_json=Path(summary_json).absolute() if summary_json else None,
            outputs=outputs,
        ).setServiceParent(top)
    return top


def _watched_runs(make_run: MakeRun, metrics: TurretCollector, probes: SinkProbes) -> MakeRun:
    """
    ``make_run``, telling the metrics of each run it makes (and where to
    read the result sink's counts).
    """
    metrics.sink_probes(probes)

    def make(context: dict[str, Any], on_crash: Callable[[Failure], None]) -> FiringRun:
        run = make_run(context, on_crash)
        metrics.run_made(run)
        return run

    return make


def _sink_probes(sink: ResultSink, link: HQLink | None, processes: int) -> SinkProbes:
    """
    Where the metrics read the results waiting, sent and dropped: the HQ
    link's counts, or the local sink's. With ``--processes`` above 1 the
    workers send the results, and these counts are not shown.
    """
    if processes > 1:
        return SinkProbes()
    if link is not None:
        hq = link
        return SinkProbes(pending=hq.pending, sent=lambda: hq.sent, dropped=lambda: hq.dropped)
    local = cast("LocalSink", sink)
    return SinkProbes(
        pending=local.pending, sent=lambda: local.delivered, dropped=lambda: local.dropped
    )


def _when_ready(
    when_running: Callable[[Callable[[], None]], object], fleet: Fleet
) -> Callable[[Callable[[], None]], object]:
    """
    Calls a function once the reactor runs and every worker is ready: a
    standalone run's duration counts from when the workers can fire.
    """

    def call(function: Callable[[], None]) -> object:
        def running() -> None:
            fleet.ready().addCallback(lambda _: function())

        return when_running(running)

    return call


#: The environment variable that makes ``--processes`` spawn its workers
#: (``spawn``) instead of forking them from the zygote (the bench compares
#: both).
WORKERS_ENV = "OCT_TURRET_WORKERS"


def _zygote(options: Options, reactor: Any) -> ZygoteClient | None:
    """
    The zygote the workers are forked from (see
    :mod:`~octtwisted._edge.zygote`), or None: they are spawned (asked for
    with ``OCT_TURRET_WORKERS=spawn``, or this process may not fork now).
    Each forked worker builds :func:`worker_service` for its share, with
    the options loaded once, here.
    """
    log = logs.logger(logs.PROCESSES)
    if os.environ.get(WORKERS_ENV) == "spawn":
        return None
    problem = fork_safe()
    if problem is not None:
        log.warn("workers are spawned, not forked: {problem}", problem=problem)
        return None

    def start(message: dict[str, Any], fds: list[int]) -> int:
        share = options.shares[int(message["index"])]
        generation = int(message["generation"])
        return become_worker(
            reactor, fds,
            lambda channel: worker_service(options.as_worker(share, generation), channel=channel),
        )

    zygote = ZygoteClient(*fork_zygote(reactor, start), reactor)
    log.info("workers are forked from a zygote (pid {pid})", pid=zygote.pid)
    return zygote


def _fleet(options: Options, reactor: Any, exit: ProcessExit, zygote: ZygoteClient | None) -> Fleet:
    """
    The worker processes of ``--processes``, forked from the zygote (or
    spawned, without one); the parts of a results file left by an earlier
    turret are removed first (they would be joined).
    """
    results = options.output_settings.results
    if results is not None:
        for stale in part_files(results):
            stale.unlink()
    config = options.turret_config
    spawner = Spawner(options.worker_argv, reactor.spawnProcess, dict(os.environ))
    start: StartWorker = spawner if zygote is None else ZygoteSpawner(zygote, spawner, reactor)
    return Fleet(
        shares=options.shares,
        start=start,
        clock=reactor,
        exit=exit,
        stop_bound=config.stop_timeout + config.linger + STOP_MARGIN,
    )


def worker_service(options: Options, channel: int | None = None) -> IService:
    """
    The tree of a worker process (``--worker K/N``): its share of the
    load, its own results socket to the HQ (no orders, no status: the main
    process takes and sends those), its part of the results file, and the
    :class:`~octtwisted._edge.worker.WorkerService` that obeys the main
    process over the pipes it was spawned with, or (forked by the zygote)
    over the socket ``channel``.

    The worker leaves the main process's process group, so that a ^C in
    the terminal reaches the main process alone, which stops its workers
    in order.
    """
    from twisted.internet import reactor, stdio

    from octtwisted._edge.channel import FROM_MAIN, TO_MAIN, Channel
    from octtwisted._edge.worker import WorkerService

    share = options.worker_share
    assert share is not None
    os.setpgid(0, 0)
    config = options.turret_config
    top = SequentialMultiService()
    exit = ProcessExit(reactor, ExitCleanups())
    sink: ResultSink
    if options["standalone"]:
        from octtwisted._hq.localsink import LocalSink

        sink = LocalSink()
    else:
        from octtwisted._hq.link import HQLink
        from octtwisted._hq.sockopts import SocketOptions

        link = HQLink(
            order_address=None,
            result_address=config.result_address,
            uuid=options["uuid"],
            reactor=reactor,
            linger=config.linger,
            options=SocketOptions(ipv6=config.hq_ipv6, silence_timeout=config.hq_silence_timeout),
        )
        link.setServiceParent(top)
        sink = link
    steps = make_cannon_factory(decide(options.transaction_class, config.blocking), reactor, top)
    outputs = make_outputs(
        config=config, settings=options.output_settings, clock=reactor,
        turret_id=options["uuid"], live=False,
    )
    if outputs is not None:
        outputs.setServiceParent(top)

    # (typed from the Windows module, which takes no file descriptors)
    standard_io: Any = stdio.StandardIO

    reading, writing = FROM_MAIN, TO_MAIN
    if channel is not None:
        # One socket both ways: a descriptor of its own for each direction,
        # so that closing one leaves the other open.
        reading, writing = channel, os.dup(channel)

    def connect(protocol: Channel) -> object:
        return standard_io(protocol, stdin=reading, stdout=writing, reactor=reactor)

    WorkerService(
        share=share,
        make_run=local_runs(
            config=config,
            transaction_class=options.transaction_class,
            steps=steps,
            clocks=Clocks(reactor=reactor),
            sink=sink,
            gc=CalmGC(reactor),
            outputs=outputs,
            share=share,
        ),
        sink=sink,
        clock=reactor,
        connect=connect,
        exit=exit,
        linger=config.linger,
        outputs=outputs,
    ).setServiceParent(top)
    ReactorWatchdog(reactor, time.monotonic).setServiceParent(top)
    return top


def _hq_link(
    config: TurretConfig,
    uuid: str,
    reactor: IReactorTime,
    frames_sent: Callable[[list[bytes]], None] | None,
) -> HQLink:
    """
    The link to the HQ the config names. (Imported here: txzmq installs
    the reactor when it is imported, and twistd imports this module first.)
    """
    from octtwisted._hq.link import HQLink
    from octtwisted._hq.sockopts import SocketOptions

    return HQLink(
        order_address=config.order_address,
        result_address=config.result_address,
        uuid=uuid,
        reactor=reactor,
        linger=config.linger,
        options=SocketOptions(ipv6=config.hq_ipv6, silence_timeout=config.hq_silence_timeout),
        frames_sent=frames_sent,
    )
