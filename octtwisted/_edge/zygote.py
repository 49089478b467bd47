"""
The zygote of ``--processes``: the workers are forked from a process that
has already imported everything, instead of spawned as fresh interpreters.

:func:`fork_zygote` is called by ``makeService`` in the main process once
the options, the config and the script are loaded and checked, before
anything starts a thread, a ZeroMQ context or the reactor: it collects and
freezes the garbage collector's objects (``gc.freeze()``: a collection
then never writes to their headers, so the pages stay shared), and forks
the *zygote*. The zygote runs :class:`ZygoteLoop`, a small blocking loop
(no reactor), until the main process ends.

To start a worker, the main process makes its pipes (socket pairs: its
channel, its standard output and error), and sends the zygote ``start``
with the worker's ends of them (``SCM_RIGHTS``); the zygote forks the
worker, which puts them in place and runs the worker's service tree on a
fresh reactor state (:func:`become_worker`), and answers with its pid. The
zygote reaps its children and reports each end (pid, exit status or
signal) to the main process, which hands it to the worker's
:class:`~octtwisted._edge.forked.ForkedProcess` once the worker's pipes have reached their end, as
Twisted's own process transport does.

The wire between the main process and the zygote: two Unix socket pairs.
*Requests* (``SOCK_SEQPACKET``: one message per packet, the file
descriptors travel with it) are used by the main process alone, waiting
for each answer: ``{"do": "start", "index", "count", "generation"}`` with
three file descriptors, answered ``{"is": "started", "pid"}`` or
``{"is": "failed", "why"}``. *Events* (a stream, 32-bit length framed, read
by the main process's reactor): ``{"is": "ended", "pid", "code",
"signal"}``. Each message is a JSON object.

The main process's side is :mod:`~octtwisted._edge.forked`.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import struct
import sys
import threading
import traceback
from typing import Any, Callable, Sequence

import orjson
from twisted.application.service import IService
from twisted.internet import error

from octtwisted._edge.channel import Message

#: The largest message on the requests socket.
MAX_REQUEST = 64 * 1024
#: File descriptors a ``start`` carries: the worker's channel, stdout, stderr.
START_FDS = 3
#: Seconds between two looks at the zygote's children.
REAP_INTERVAL = 0.1
#: Exit status of a forked worker that failed before its reactor ran.
EXIT_FAILED = 70


class ZygoteError(Exception):
    """The zygote did not start a worker (it has gone, or refused)."""


# The wire (both sides)


def encode(message: Message) -> bytes:
    return orjson.dumps(message)


def decode(data: bytes) -> Message:
    """One message; :exc:`ValueError` if it is not a JSON object."""
    message = orjson.loads(data)
    if not isinstance(message, dict):
        raise ValueError(f"not a JSON object: {message!r}")
    return message


def frame(message: Message) -> bytes:
    """A message on the events stream (as :class:`Channel` reads it)."""
    data = encode(message)
    return struct.pack("!I", len(data)) + data


def send_request(sock: socket.socket, message: Message, fds: Sequence[int] = ()) -> None:
    """One packet on the requests socket, with ``fds`` passed along."""
    if fds:
        socket.send_fds(sock, [encode(message)], list(fds))
    else:
        sock.send(encode(message))


def receive_request(sock: socket.socket) -> tuple[Message, list[int]] | None:
    """
    The next packet on the requests socket and the file descriptors that
    came with it (now this process's); None once the other end has closed.
    :exc:`ValueError` for a packet that is not a message (its file
    descriptors are closed).
    """
    data, fds, flags, _ = socket.recv_fds(sock, MAX_REQUEST, START_FDS + 1)
    if not data and not fds:
        return None
    try:
        if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
            raise ValueError("a request was cut short")
        return decode(data), list(fds)
    except ValueError:
        for fd in fds:
            os.close(fd)
        raise


def end_report(pid: int, status: int) -> Message:
    """The zygote's report of a child's end, from its ``waitpid`` status."""
    if os.WIFSIGNALED(status):
        return {"is": "ended", "pid": pid, "code": None, "signal": os.WTERMSIG(status)}
    return {"is": "ended", "pid": pid, "code": os.WEXITSTATUS(status), "signal": None}


def end_reason(report: Message) -> Exception:
    """
    How the worker of a report ended, as Twisted says it of a spawned
    process: :class:`ProcessDone` (status 0) or :class:`ProcessTerminated`.
    """
    code, sig = report.get("code"), report.get("signal")
    if sig is not None:
        return error.ProcessTerminated(None, int(sig))
    if code == 0:
        return error.ProcessDone(0)
    return error.ProcessTerminated(None if code is None else int(code))


# The zygote's side


#: Runs in a freshly forked worker: its ``start`` message and its three
#: file descriptors; returns its exit status.
StartWorker = Callable[[Message, list[int]], int]


class ZygoteLoop:
    """
    The zygote's loop: forks a worker for each ``start`` request, reaps
    its children and reports their ends; returns when the main process has
    gone (its end of either socket closed).
    """

    def __init__(self, requests: socket.socket, events: socket.socket, start_worker: StartWorker) -> None:
        self._requests = requests
        self._events = events
        self._start_worker = start_worker

    def run(self) -> None:
        while True:
            readable, _, _ = select.select([self._requests], [], [], REAP_INTERVAL)
            if not self.reap():
                return
            if readable:
                try:
                    got = receive_request(self._requests)
                except ValueError as e:
                    self._answer({"is": "failed", "why": str(e)})
                    continue
                except OSError:
                    return
                if got is None:
                    return
                self._answer(self.start(*got))

    def _answer(self, message: Message) -> None:
        try:
            send_request(self._requests, message)
        except OSError:
            pass  # the main process has gone: the next read says so

    def start(self, message: Message, fds: list[int]) -> Message:
        if message.get("do") != "start" or len(fds) != START_FDS:
            for fd in fds:
                os.close(fd)
            return {"is": "failed", "why": f"not a start with {START_FDS} fds: {message!r}"}
        try:
            pid = os.fork()
        except OSError as e:
            for fd in fds:
                os.close(fd)
            return {"is": "failed", "why": f"fork: {e}"}
        if pid == 0:
            self._worker(message, fds)
        for fd in fds:
            os.close(fd)
        return {"is": "started", "pid": pid}

    def _worker(self, message: Message, fds: list[int]) -> None:
        """In the forked worker: never returns."""
        code = EXIT_FAILED
        try:
            self._requests.close()
            self._events.close()
            code = self._start_worker(message, fds)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)

    def reap(self) -> bool:
        """Report every child that has ended; False if the main process has gone."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return True
            try:
                self._events.sendall(frame(end_report(pid, status)))
            except OSError:
                return False


def fork_safe() -> str | None:
    """Why this process may not fork a zygote now, or None if it may."""
    if threading.active_count() != 1:
        return f"{threading.active_count()} threads run"
    try:
        tasks = len(os.listdir("/proc/self/task"))
    except OSError:
        tasks = 1
    if tasks != 1:
        return f"{tasks} threads run (not all Python's)"
    zmq = sys.modules.get("zmq")
    if zmq is not None and getattr(zmq.Context, "_instance", None) is not None:
        return "a ZeroMQ context exists"
    return None


def fork_zygote(reactor: Any, start_worker: StartWorker) -> tuple[int, socket.socket, socket.socket]:
    """
    In the main process, before anything runs: freeze the collector's
    objects and fork the zygote. The zygote never returns from here (it
    ends with ``os._exit``); the main process gets the zygote's pid and
    its ends of the requests and events sockets (for
    :class:`~octtwisted._edge.forked.ZygoteClient`).

    :param reactor: the installed reactor, not running yet: the zygote
        closes its poller and waker (they belong to the main process), a
        worker gets fresh ones (:func:`become_worker`).
    """
    requests, zygote_requests = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    events, zygote_events = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    gc.collect()
    gc.freeze()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            requests.close()
            events.close()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            reactor.waker.connectionLost(None)
            reactor._poller.close()
            ZygoteLoop(zygote_requests, zygote_events, start_worker).run()
        except BaseException:
            traceback.print_exc()
            code = EXIT_FAILED
        finally:
            os._exit(code)
    zygote_requests.close()
    zygote_events.close()
    return pid, requests, events


def become_worker(reactor: Any, fds: Sequence[int], build: Callable[[int], IService]) -> int:
    """
    In a worker just forked by the zygote: put its pipes in place
    (``/dev/null`` on 0, its stdout and stderr on 1 and 2), give the
    reactor a fresh state (a poller and waker of its own: the inherited
    ones were the main process's), log as a spawned worker's twistd would
    (to its stdout), build its service tree (``build`` is given the file
    descriptor of its channel) and run it as twistd does. Returns the exit
    status (a service may end the process itself, with its own).
    """
    from twisted.logger import globalLogBeginner, textFileLogObserver

    channel, out, err = fds
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reactor.__init__()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], discardBuffer=True)
    service = build(channel)
    service.privilegedStartService()
    reactor.addSystemEventTrigger("before", "startup", service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    sys.stdout.flush()
    exit_signal = getattr(reactor, "_exitSignal", None)
    if exit_signal is not None:  # twistd re-raises the signal that stopped it
        signal.signal(exit_signal, signal.SIG_DFL)
        os.kill(os.getpid(), exit_signal)
    return 0
