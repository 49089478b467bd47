"""
A worker process of a turret that fires from several processes
(``--processes``): ``twistd oct-turret ... --worker K/N``, spawned by the
main process's :class:`~octtwisted._edge.fleet.Fleet`, never by a user.

:class:`WorkerService` obeys the main process over the pipe of
:mod:`~octtwisted._edge.channel`: it fires its share of the load
(:class:`~octtwisted._core.share.LoadShare`) in runs made by its
:class:`~octtwisted._firing.runkeeper.RunKeeper`, sends its results to the
HQ itself (its own PUSH socket; it has no SUB socket and sends no status:
the main process is the turret the HQ sees), and sends the main process a
part of its figures 10 times a second, and its last one when its run has
stopped. When the pipe from the main process closes (the main process
ended, even by SIGKILL), it stops firing at once and exits.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.deferreds import when_fired
from octtwisted._core.interfaces import ResultSink
from octtwisted._core.share import LoadShare
from octtwisted._edge.channel import Channel, Message
from octtwisted._firing.run import Run
from octtwisted._firing.runkeeper import MakeRun, RunKeeper
from octtwisted._stats.outputs import RunOutputs

#: Seconds between two parts sent while firing.
PART_INTERVAL = 0.1

#: Seconds a worker whose main process has gone may take to stop.
ORPHAN_EXIT = 1.5

#: Exit status of a worker whose run machinery failed.
EXIT_WORKER_FAILED = 70


class WorkerService(Service):
    """
    :param make_run: makes this worker's runs (its share of the load).
    :param sink: where its results go (its own link to the HQ, or a local
        sink standalone).
    :param connect: connects a protocol to the pipes from and to the main
        process (``StandardIO`` on :data:`~octtwisted._edge.channel.FROM_MAIN`
        and :data:`~octtwisted._edge.channel.TO_MAIN`).
    :param exit: ends the process with a status.
    :param linger: the most seconds a flush of its results may take.
    :param outputs: its part of the results file, if any.
    """

    log = logs.logger(logs.WORKER)

    def __init__(
        self,
        *,
        share: LoadShare,
        make_run: MakeRun,
        sink: ResultSink,
        clock: IReactorTime,
        connect: Callable[[Channel], object],
        exit: Callable[[int], None],
        linger: float,
        outputs: RunOutputs | None = None,
        exit_now: Callable[[int], None] = os._exit,
    ) -> None:
        self._share = share
        self._sink = sink
        self._clock = clock
        self._connect = connect
        self._exit = exit
        self._exit_now = exit_now
        self._linger = linger
        self._outputs = outputs
        self._runs = RunKeeper(make_run, on_crash=self._crashed)
        self._channel = Channel(self._message, self._main_gone)
        self._parts = LoopingCall(self._send_part)
        self._parts.clock = clock
        self._stopping: Deferred[None] | None = None
        self._leaving = False
        self._left: Deferred[None] = defer.succeed(None)

    def startService(self) -> None:
        super().startService()
        self._connect(self._channel)
        self._channel.send({"is": "ready", "pid": os.getpid(), "cannons": self._share.cannons})

    def stopService(self) -> Deferred[None]:
        """The process is stopping (a signal): stop the run, flush, end."""
        super().stopService()
        return self._leave()

    # Orders from the main process

    def _message(self, message: Message) -> None:
        do = message.get("do")
        if do == "start":
            context = message.get("context")
            self._start(context if isinstance(context, dict) else {})
        elif do == "stop":
            self._stop()
        elif do == "supersede":
            run = self._runs.current
            if run is not None:
                run.supersede()
        elif do == "exit":
            self._leave().addCallback(lambda _: self._exit(0))
        else:
            self.log.error("unknown message from the main process: {message!r}", message=message)

    def _start(self, context: dict[str, Any]) -> None:
        if self._runs.current is not None or self._leaving:
            self.log.error("start ignored: a run is under way")
            return
        self._sink.run_started()
        self._runs.start(context)
        self._parts.start(PART_INTERVAL, now=False)

    def _stop(self) -> Deferred[None]:
        """
        Stop the run under way; then send the last part and ``stopped``.
        """
        if self._stopping is not None:
            return self._stopping
        if self._runs.current is None:
            self._channel.send({"is": "stopped", "part": None, "started": 0, "dropped": 0})
            return defer.succeed(None)
        d = self._runs.stop()
        d.addCallback(lambda _: self._stopped())
        d.addErrback(self._crashed)
        self._stopping = d
        return d

    def _stopped(self) -> Deferred[None]:
        """
        The run has stopped: its results are handed to ZeroMQ (bounded by
        the linger), so that they leave before the main process answers
        ``ready``; then its summary is taken (its dropped count includes
        what the flush gave up on), its part of the results file written,
        and ``stopped`` sent with its last part.
        """
        if self._parts.running:
            self._parts.stop()
        run = self._runs.current
        assert isinstance(run, Run)
        self._sink.run_ended()
        d = self._sink.flush(self._linger)
        d.addCallback(lambda _: self._closed(run))
        return d

    def _closed(self, run: Run) -> Deferred[None]:
        part = run.stats.take_part(run.starts)
        started = run.cannons_started
        summary = self._runs.close(as_table=False)
        idle = self._outputs.idle() if self._outputs is not None else defer.succeed(None)

        def tell(_: object) -> None:
            self._stopping = None
            self._channel.send({
                "is": "stopped",
                "part": part.to_wire(),
                "started": started,
                "dropped": summary.dropped if summary is not None else 0,
            })

        return idle.addCallback(tell)

    def _send_part(self) -> None:
        run = self._runs.current
        if not isinstance(run, Run):
            return
        self._channel.send({
            "is": "part",
            "part": run.stats.take_part(run.starts).to_wire(),
            "active": run.active_cannons(),
            "started": run.cannons_started,
            "in_flight": run.in_flight(),
        })

    # Ending

    def _leave(self) -> Deferred[None]:
        """
        Stop the run (if any), then flush the results (bounded by the
        linger). Every way out shares it.
        """
        if not self._leaving:
            self._leaving = True
            d = self._stop() if self._runs.current is not None else defer.succeed(None)
            d.addCallback(lambda _: self._sink.flush(self._linger))
            self._left = d
        return when_fired(self._left)

    def _main_gone(self) -> None:
        """
        The pipe from the main process closed: it has ended. Stop firing
        now and exit, within :data:`ORPHAN_EXIT` seconds whatever the
        cannons do. (Not when this worker is leaving already: its own
        end closes the pipe too.)
        """
        if self._leaving:
            return
        self.log.warn("the turret's main process has gone: worker {index} stops",
                      index=self._share.index)
        self._clock.callLater(ORPHAN_EXIT, self._exit_now, EXIT_WORKER_FAILED)
        self._leave().addBoth(lambda _: self._exit(EXIT_WORKER_FAILED))

    def _crashed(self, failure: Failure) -> None:
        self.log.failure("worker error; exiting", failure=failure)
        self._exit_now(EXIT_WORKER_FAILED)
