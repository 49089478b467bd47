"""
The worker processes of a turret that fires from several processes
(``--processes N``): :class:`Fleet` starts them (forked from the zygote,
:mod:`~octtwisted._edge.zygote`, or spawned by :class:`Spawner` with
``spawnProcess``, as Twisted's own ``trial -j`` does), talks to each over
its pipes
(:mod:`~octtwisted._edge.channel`), relays each run's orders to them, and
replaces one that dies.

Each worker owns one :class:`~octtwisted._core.share.LoadShare` of the
load for the life of the turret. A worker that dies (its script called
``os._exit``, a segfault, the OOM killer) is noticed at once
(``processEnded``: reported by the zygote that forked it, or SIGCHLD for
a spawned one), logged with its exit status or signal and its cannons,
and replaced by a fresh process that takes the same share; during a run
the new process starts firing at once, so the load holds. More than
:data:`MAX_DEATHS` deaths within :data:`DEATH_WINDOW` seconds stop the run
with an error.

The fleet is the run's :class:`~octtwisted._firing.fleetrun.WorkerGroup`:
:class:`~octtwisted._firing.fleetrun.FleetRun` starts and stops the runs
through it and is given each worker's parts.
"""

from __future__ import annotations

import collections
import re
import signal
from typing import Any, Callable, Sequence

from twisted.application.service import Service
from twisted.internet import defer, error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IProcessTransport, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.deferreds import cancel_call, when_fired
from octtwisted._core.share import LoadShare
from octtwisted._edge.channel import FROM_MAIN, TO_MAIN, Channel, ChildPipe, Message
from octtwisted._firing.fleetrun import RunListener
from octtwisted._stats.parts import Part

#: More deaths than this within :data:`DEATH_WINDOW` seconds stop the run.
MAX_DEATHS = 3
DEATH_WINDOW = 60.0

#: Seconds the workers may take to exit once told to, before SIGKILL.
EXIT_GRACE = 5.0

#: twistd's log line prefix (its time stamp), taken off a worker's lines.
_STAMP = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} ")
_LEVEL = re.compile(rb"#(warn|error|critical)\]")
#: twistd's own lines of a worker's start and end, not passed on
_QUIET = re.compile(rb"\[(twisted\.scripts\._twistd_unix\.UnixAppLogger|twisted\.internet\.base)#info\]")

#: Spawns a process: ``reactor.spawnProcess``'s signature.
Spawn = Callable[..., IProcessTransport]


class WorkerProcess(ProcessProtocol):
    """
    One worker process as the main process sees it: its pipes (messages
    on :data:`~octtwisted._edge.channel.TO_MAIN`, log lines on its standard
    output and error), and its end.
    """

    def __init__(self, fleet: "Fleet", share: LoadShare) -> None:
        self.fleet = fleet
        self.share = share
        self.channel = Channel(self._message, lambda: None)
        self.pid: int | None = None
        self.ready = False
        #: sent ``start`` and not yet answered ``stopped``
        self.in_run = False
        self.ended = False
        self._lines = {1: b"", 2: b""}

    def connectionMade(self) -> None:
        assert self.transport is not None
        transport = self.transport
        self.pid = transport.pid
        self.channel.makeConnection(ChildPipe(transport.writeToChild, transport.closeChildFD))

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == TO_MAIN:
            self.channel.dataReceived(data)
            return
        buffered = self._lines.get(childFD, b"") + data
        *lines, rest = buffered.split(b"\n")
        self._lines[childFD] = rest
        for line in lines:
            self.fleet.worker_said(self, line)

    def _message(self, message: Message) -> None:
        self.fleet.worker_message(self, message)

    def send(self, message: Message) -> None:
        if not self.ended:
            self.channel.send(message)

    def processEnded(self, reason: Failure) -> None:
        self.ended = True
        self.channel.connectionLost(reason)
        for fd, rest in self._lines.items():
            if rest:
                self.fleet.worker_said(self, rest)
        self.fleet.worker_ended(self, reason.value)

    def kill(self) -> None:
        if not self.ended and self.transport is not None:
            try:
                self.transport.signalProcess("KILL")
            except error.ProcessExitedAlready:
                pass


def describe_end(reason: object) -> str:
    """
    How a process ended, in words: its exit status, or its signal (or
    neither, when it is not known: a forked worker whose zygote had gone).
    """
    sig = getattr(reason, "signal", None)
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by signal {sig} ({name})"
    code = getattr(reason, "exitCode", None)
    return "exit status unknown" if code is None else f"exit status {code}"


#: Starts the worker process of a share: what :class:`Fleet` is given.
StartWorker = Callable[["Fleet", LoadShare], WorkerProcess]


class Spawner:
    """
    Starts the worker process of a share as a fresh process (``twistd
    oct-turret ... --worker K/N``): ``argv`` makes its command line, given
    which process of the share it is (0 for the first, 1 for the one that
    replaces it...).
    """

    def __init__(
        self, argv: Callable[[LoadShare, int], list[str]], spawn: Spawn, env: dict[str, str]
    ) -> None:
        self._argv = argv
        self._spawn = spawn
        self._env = env
        self._generations: dict[int, int] = collections.defaultdict(int)

    def next_generation(self, share: LoadShare) -> int:
        """Which process of ``share`` the next one is (each is counted once)."""
        generation = self._generations[share.index]
        self._generations[share.index] += 1
        return generation

    def __call__(self, fleet: "Fleet", share: LoadShare) -> WorkerProcess:
        worker = WorkerProcess(fleet, share)
        argv = self._argv(share, self.next_generation(share))
        self._spawn(
            worker, argv[0], argv, env=self._env,
            childFDs={0: "w", 1: "r", 2: "r", FROM_MAIN: "w", TO_MAIN: "r"},
        )
        return worker


class Deaths:
    """
    The workers' deaths: how many were replaced, and whether too many came
    within :data:`DEATH_WINDOW` seconds.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._times: collections.deque[float] = collections.deque()
        #: processes replaced since the turret started
        self.replaced = 0
        #: too many died: none is replaced any more
        self.given_up = False

    def died(self) -> int:
        """One more died; returns how many died within the window."""
        now = self._clock.seconds()
        self._times.append(now)
        while self._times and self._times[0] < now - DEATH_WINDOW:
            self._times.popleft()
        return len(self._times)


class Fleet(Service):
    """
    :param shares: the load's shares, one per worker.
    :param start: starts the worker process of a share (a
        :class:`Spawner`, or a
        :class:`~octtwisted._edge.zygote.ZygoteSpawner`).
    :param exit: ends the main process with a status (when workers keep
        dying while no run is under way).
    :param stop_bound: the most seconds a worker may take to answer
        ``stop`` before it is killed.
    """

    log = logs.logger(logs.PROCESSES)

    def __init__(
        self,
        *,
        shares: Sequence[LoadShare],
        start: StartWorker,
        clock: IReactorTime,
        exit: Callable[[int], None],
        stop_bound: float,
    ) -> None:
        self._shares = tuple(shares)
        self._spawner = start
        self._clock = clock
        self._exit = exit
        self._stop_bound = stop_bound
        self.workers: list[WorkerProcess] = []
        self._deaths = Deaths(clock)
        self._listener: RunListener | None = None
        self._context: dict[str, Any] | None = None
        self._stopping: Deferred[None] | None = None
        self._stop_timer: IDelayedCall | None = None
        self._leaving = False
        self._gone: Deferred[None] | None = None
        self._waiting_ready: list[Deferred[None]] = []

    @property
    def processes(self) -> int:
        return len(self._shares)

    def worker_pids(self) -> list[int | None]:
        """The workers' process ids (None: not spawned yet), read-only."""
        return [worker.pid for worker in self.workers]

    @property
    def replaced(self) -> int:
        """Processes replaced since the turret started."""
        return self._deaths.replaced

    # Service

    def startService(self) -> None:
        super().startService()
        self.workers = [self._spawner(self, share) for share in self._shares]
        self.log.info(
            "firing from {processes} processes: {pids}",
            processes=self.processes,
            pids=", ".join(f"worker {w.share.index} (pid {w.pid}, {w.share.cannons} cannons)"
                           for w in self.workers),
        )

    def stopService(self) -> Deferred[None]:
        """
        Tell every worker to exit (each stops its run and flushes its
        results first); kill those still there after the grace.
        """
        super().stopService()
        self._leaving = True
        live = [w for w in self.workers if not w.ended]
        if not live:
            return defer.succeed(None)
        self._gone = Deferred()
        for worker in live:
            worker.send({"do": "exit"})
        timer = self._clock.callLater(self._stop_bound + EXIT_GRACE, self._kill_all)
        return self._gone.addBoth(lambda _: cancel_call(timer))

    def _kill_all(self) -> None:
        for worker in self.workers:
            if not worker.ended:
                self.log.error("worker {index} (pid {pid}) did not exit: killed",
                               index=worker.share.index, pid=worker.pid)
                worker.kill()

    # The runs (WorkerGroup)

    def ready(self) -> Deferred[None]:
        """
        Fires once every worker has said it is ready (it has loaded the
        config and the script): a run's clock starts then, not while the
        workers are still starting.
        """
        if all(w.ready for w in self.workers):
            return defer.succeed(None)
        waiting: Deferred[None] = Deferred()
        self._waiting_ready.append(waiting)
        return waiting

    def start_run(self, context: dict[str, Any], listener: RunListener) -> None:
        self._context = dict(context)
        self._listener = listener
        for worker in self.workers:
            self._start_firing(worker)

    def _start_firing(self, worker: WorkerProcess) -> None:
        if worker.ended:
            return
        worker.in_run = True
        worker.send({"do": "start", "context": self._context})

    def stop_run(self) -> Deferred[None]:
        """
        Tell every worker to stop; fires once each has answered
        ``stopped`` (or has ended, or was killed after ``stop_bound``).
        """
        stopping = self._stopping
        if stopping is None:
            stopping = self._stopping = Deferred()
            self._context = None
            for worker in self.workers:
                if worker.in_run:
                    worker.send({"do": "stop"})
            self._stop_timer = self._clock.callLater(self._stop_bound, self._stop_overdue)
            self._check_stopped()
        return when_fired(stopping)

    def _stop_overdue(self) -> None:
        self._stop_timer = None
        for worker in self.workers:
            if worker.in_run and not worker.ended:
                self.log.error(
                    "worker {index} (pid {pid}) did not stop within {bound}s: killed",
                    index=worker.share.index, pid=worker.pid, bound=self._stop_bound,
                )
                worker.in_run = False
                worker.kill()
        self._check_stopped()

    def _check_stopped(self) -> None:
        if self._stopping is None or any(w.in_run for w in self.workers):
            return
        cancel_call(self._stop_timer)
        self._stop_timer = None
        stopping, self._stopping = self._stopping, None
        self._listener = None
        stopping.callback(None)

    def supersede_run(self) -> None:
        for worker in self.workers:
            if worker.in_run:
                worker.send({"do": "supersede"})

    # What the workers say

    def worker_message(self, worker: WorkerProcess, message: Message) -> None:
        kind = message.get("is")
        listener = self._listener
        index = worker.share.index
        try:
            if kind == "part":
                if listener is not None and worker.in_run:
                    listener.part(index, Part.from_wire(message["part"]),
                                  int(message["active"]), int(message["started"]),
                                  int(message.get("in_flight", 0)))
            elif kind == "stopped":
                if listener is not None and worker.in_run:
                    wire = message.get("part")
                    if wire is not None:
                        listener.part(index, Part.from_wire(wire), 0, int(message["started"]))
                    listener.ended(index, int(message["started"]), int(message["dropped"]))
                worker.in_run = False
                self._check_stopped()
            elif kind == "ready":
                worker.ready = True
                if all(w.ready for w in self.workers):
                    waiting, self._waiting_ready = self._waiting_ready, []
                    for d in waiting:
                        d.callback(None)
            else:
                raise ValueError(f"unknown message {kind!r}")
        except (KeyError, TypeError, ValueError) as e:
            self.log.error("worker {index} sent a bad message: {problem}", index=index, problem=str(e))

    def worker_said(self, worker: WorkerProcess, line: bytes) -> None:
        if _QUIET.search(line):
            return
        text = _STAMP.sub(b"", line.rstrip(b"\r")).decode("utf-8", "replace")
        if not text:
            return
        if _LEVEL.search(line):
            self.log.warn("worker {index}: {line}", index=worker.share.index, line=text)
        else:
            self.log.info("worker {index}: {line}", index=worker.share.index, line=text)

    def worker_ended(self, worker: WorkerProcess, reason: object) -> None:
        index = worker.share.index
        was_in_run = worker.in_run
        worker.in_run = False
        if self._leaving:
            if all(w.ended for w in self.workers) and self._gone is not None:
                gone, self._gone = self._gone, None
                gone.callback(None)
            return
        how = describe_end(reason)
        self.log.error(
            "worker {index} (pid {pid}, {cannons} cannons) died: {how}",
            index=index, pid=worker.pid, cannons=worker.share.cannons, how=how,
        )
        if self._listener is not None and was_in_run:
            self._listener.lost(index)
        if self._deaths.given_up:
            self._check_stopped()
            return
        died = self._deaths.died()
        if died > MAX_DEATHS:
            self._give_up(
                f"{died} worker processes died within {DEATH_WINDOW:g}s "
                f"(the last: worker {index}, {how}): stopping"
            )
            self._check_stopped()
            return
        fresh = self._spawner(self, worker.share)
        self.workers[self.workers.index(worker)] = fresh
        self._deaths.replaced += 1
        self.log.info(
            "worker {index} replaced by a fresh process (pid {pid}){firing}",
            index=index, pid=fresh.pid,
            firing=": it fires its cannons now" if self._context is not None else "",
        )
        if self._context is not None and self._stopping is None:
            self._start_firing(fresh)
        self._check_stopped()

    def _give_up(self, reason: str) -> None:
        self._deaths.given_up = True
        listener = self._listener
        if listener is not None:
            listener.failed(reason)
        else:
            self.log.error("{reason}", reason=reason)
            self._exit(70)
