"""
The main process's side of the workers forked by the zygote
(:mod:`~octtwisted._edge.zygote`): :class:`ZygoteClient` has the zygote
fork each worker, :class:`ForkedProcess` is a forked worker's transport as
:class:`~octtwisted._edge.fleet.WorkerProcess` uses a spawned process's,
and :class:`ZygoteSpawner` is the :class:`~octtwisted._edge.fleet.Fleet`'s
way to start workers when there is a zygote.

If the zygote dies, the main process says so once, and spawns further
workers (:class:`~octtwisted._edge.fleet.Spawner`); the workers the zygote
had forked go on, and their ends are noticed by their pipes and their pid
(their exit status is lost with the zygote).
"""

from __future__ import annotations

import os
import signal
import socket
from typing import Any, Callable, Sequence

from twisted.internet import error
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.share import LoadShare
from octtwisted._edge.channel import FROM_MAIN, TO_MAIN, Channel, Message
from octtwisted._edge.fleet import Spawner, WorkerProcess
from octtwisted._edge.zygote import REAP_INTERVAL, ZygoteError, end_reason, receive_request, send_request

#: Seconds the main process waits for the zygote's answer.
ANSWER_TIMEOUT = 10.0


class ZygoteClient:
    """
    The main process's end of the zygote: starts workers through it
    (waiting for its answer: a fork, about a millisecond), and hands each
    worker's end, as the zygote reports it, to its :class:`ForkedProcess`.

    :ivar alive: False once the zygote has gone (said once in the log).
    """

    log = logs.logger(logs.PROCESSES)

    def __init__(self, pid: int, requests: socket.socket, events: socket.socket, reactor: Any) -> None:
        self.pid = pid
        self.alive = True
        self._requests = requests
        self._requests.settimeout(ANSWER_TIMEOUT)
        self._reactor = reactor
        self._processes: dict[int, ForkedProcess] = {}
        channel = Channel(self._event, self._gone)
        reactor.adoptStreamConnection(events.fileno(), socket.AF_UNIX, _OneProtocol(channel))
        events.close()

    def start(self, share: LoadShare, generation: int, fds: Sequence[int]) -> int:
        """
        Have the zygote fork the worker of ``share`` with the worker's ends
        of its pipes; returns its pid. :exc:`ZygoteError` if it did not.
        """
        if not self.alive:
            raise ZygoteError("the zygote has gone")
        try:
            send_request(self._requests, {"do": "start", "index": share.index, "count": share.count,
                                          "generation": generation}, fds)
            got = receive_request(self._requests)
        except (OSError, ValueError) as e:
            self._gone(f"{type(e).__name__}: {e}")
            raise ZygoteError(str(e))
        if got is None:
            self._gone("it closed its socket")
            raise ZygoteError("the zygote has gone")
        answer, _ = got
        if answer.get("is") != "started":
            raise ZygoteError(str(answer.get("why", answer)))
        return int(answer["pid"])

    def watch(self, process: "ForkedProcess") -> None:
        """Hand ``process`` its end when the zygote reports it."""
        self._processes[process.pid] = process
        if not self.alive:
            process.orphaned()

    def _event(self, message: Message) -> None:
        if message.get("is") != "ended":
            self.log.error("the zygote sent an unknown message: {message!r}", message=message)
            return
        process = self._processes.pop(int(message["pid"]), None)
        if process is not None:
            process.ended(end_reason(message))

    def _gone(self, why: str = "its socket closed") -> None:
        if not self.alive:
            return
        self.alive = False
        self.log.error(
            "the zygote (pid {pid}) has gone ({why}): further workers are spawned as fresh processes",
            pid=self.pid, why=why,
        )
        orphans, self._processes = list(self._processes.values()), {}
        for process in orphans:
            process.orphaned()


class _OneProtocol(Factory):
    """A factory that gives its one connection a protocol made already."""

    def __init__(self, protocol: Protocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: Any) -> Protocol:
        return self._protocol


class _Pipe(Protocol):
    """One of a forked worker's pipes, as the main process reads it."""

    def __init__(self, process: "ForkedProcess", fd: int) -> None:
        self._process = process
        self._fd = fd

    def connectionMade(self) -> None:
        self._process.connected(self._fd, self.transport)

    def dataReceived(self, data: bytes) -> None:
        self._process.received(self._fd, data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._process.pipe_closed(self._fd)


class ForkedProcess:
    """
    The transport of a worker forked by the zygote, as
    :class:`~octtwisted._edge.fleet.WorkerProcess` uses a spawned
    process's: its pid, writes to its channel, signals, and
    ``processEnded`` once its pipes have reached their end and its end is
    known (reported by the zygote, or, the zygote gone, its pid gone).
    """

    def __init__(self, protocol: Any, pid: int, clock: IReactorTime, running: Callable[[int], bool]) -> None:
        self.pid = pid
        self._protocol = protocol
        self._clock = clock
        self._running = running
        self._open: dict[int, Any] = {}
        self._reason: Exception | None = None
        self._poll: LoopingCall | None = None
        self._done = False

    def pipe(self, fd: int) -> _Pipe:
        """
        The protocol of one of its pipes: its channel
        (:data:`~octtwisted._edge.channel.TO_MAIN`), its stdout (1) or
        stderr (2).
        """
        self._open[fd] = None
        return _Pipe(self, fd)

    def connected(self, fd: int, transport: Any) -> None:
        self._open[fd] = transport

    def received(self, fd: int, data: bytes) -> None:
        self._protocol.childDataReceived(fd, data)

    def writeToChild(self, fd: int, data: bytes) -> None:
        transport = self._open.get(TO_MAIN)
        if fd == FROM_MAIN and transport is not None:
            transport.write(data)

    def closeChildFD(self, fd: int) -> None:
        transport = self._open.get(TO_MAIN)
        if fd == FROM_MAIN and transport is not None:
            transport.loseWriteConnection()

    def signalProcess(self, name: str) -> None:
        if self._reason is not None:
            raise error.ProcessExitedAlready()
        try:
            os.kill(self.pid, getattr(signal, f"SIG{name}"))
        except ProcessLookupError:
            raise error.ProcessExitedAlready()

    def pipe_closed(self, fd: int) -> None:
        self._open.pop(fd, None)
        self._maybe_ended()

    def ended(self, reason: Exception) -> None:
        """Its end, as the zygote reported it."""
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        self._reason = reason
        self._maybe_ended()

    def orphaned(self) -> None:
        """
        The zygote has gone: its end will not be reported. Look at its pid
        instead (its exit status is lost with the zygote).
        """
        if self._reason is not None or self._poll is not None:
            return
        self._poll = LoopingCall(self._look)
        self._poll.clock = self._clock
        self._poll.start(REAP_INTERVAL, now=False)

    def _look(self) -> None:
        if not self._running(self.pid):
            self.ended(error.ProcessTerminated(None))

    def _maybe_ended(self) -> None:
        if self._done or self._open or self._reason is None:
            return
        self._done = True
        self._protocol.processEnded(Failure(self._reason))


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


class ZygoteSpawner:
    """
    Starts each worker through the zygote: the
    :class:`~octtwisted._edge.fleet.Fleet`'s spawner when the zygote was
    forked. Once the zygote has gone, ``fallback`` spawns them.
    """

    def __init__(self, zygote: ZygoteClient, fallback: Spawner, reactor: Any) -> None:
        self._zygote = zygote
        self._fallback = fallback
        self._reactor = reactor

    def __call__(self, fleet: Any, share: LoadShare) -> WorkerProcess:
        if not self._zygote.alive:
            return self._fallback(fleet, share)
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in (TO_MAIN, 1, 2)]
        try:
            pid = self._zygote.start(share, self._fallback.next_generation(share),
                                     [theirs.fileno() for _, theirs in pairs])
        except ZygoteError as e:
            for ours, _ in pairs:
                ours.close()
            self._zygote.log.error("the zygote did not start worker {index}: {why}", index=share.index, why=str(e))
            return self._fallback(fleet, share)
        finally:
            for _, theirs in pairs:
                theirs.close()
        worker = WorkerProcess(fleet, share)
        forked = ForkedProcess(worker, pid, self._reactor, running)
        worker.makeConnection(forked)
        for key, (ours, _) in zip((TO_MAIN, 1, 2), pairs):
            self._reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, _OneProtocol(forked.pipe(key)))
            ours.close()
        self._zygote.watch(forked)
        return worker
