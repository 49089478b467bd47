"""
The service tree of ``twistd oct-turret``: :func:`makeService` composes the
turret from small services, each given its collaborators.

Stopping goes last first, one at a time (:class:`SequentialMultiService`):
the standalone run ends the run, the turret sends its final status, the
run outputs finish their files, the cannons' threads stop, the HQ link
flushes and closes its sockets, and the extracted package is removed last.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.interfaces import ResultSink
from octtwisted._edge.exits import ExitCleanups, ProcessExit
from octtwisted._edge.options import Options
from octtwisted._edge.outputs_options import make_outputs
from octtwisted._edge.package import ExtractedPackage
from octtwisted._firing.gcpolicy import CalmGC
from octtwisted._firing.steps import make_cannon_factory
from octtwisted._firing.watchdog import ReactorWatchdog
from octtwisted._scripts.loading import decide

if TYPE_CHECKING:
    from octtwisted._hq.link import HQLink


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
    file (:meth:`RunOutputs.frames_sent`).
    """
    from twisted.internet import reactor

    from octtwisted._firing.turret import TurretService

    config = options.turret_config
    uuid = options["uuid"]
    top = SequentialMultiService()
    cleanups = ExitCleanups()
    if options.package is not None:
        PackageCleanup(options.package, options["tar"], cleanups).setServiceParent(top)
    exit = ProcessExit(reactor, cleanups)
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
    steps = make_cannon_factory(decide(options.transaction_class, config.blocking), reactor, top)
    if outputs is not None:
        outputs.setServiceParent(top)  # before the turret: it stops after it
    turret = TurretService(
        config=config,
        uuid=uuid,
        transaction_class=options.transaction_class,
        steps=steps,
        orders=link,
        sink=sink,
        clocks=Clocks(reactor=reactor),
        exit=exit,
        gc=CalmGC(reactor),
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
            when_running=reactor.callWhenRunning,
            duration=options.standalone_duration,
            exit=exit,
            summary_json=Path(summary_json).absolute() if summary_json else None,
            outputs=outputs,
        ).setServiceParent(top)
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
