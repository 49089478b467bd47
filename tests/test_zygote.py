"""
The pieces of the zygote of ``--processes`` (:mod:`octtwisted._edge.zygote`)
that can be tried without a twistd: the messages and their framing, file
descriptors passed over a real socket pair, the reports of a child's end,
the zygote's loop forking and reaping a real (tiny) child, and the main
process's :class:`~octtwisted._edge.forked.ForkedProcess` deciding when a worker has ended.
"""

from __future__ import annotations

import os
import select
import signal
import socket
from typing import Any

from twisted.internet import error
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._edge.channel import FROM_MAIN, TO_MAIN, Channel
from octtwisted._edge.fleet import describe_end
from octtwisted._edge.forked import ForkedProcess
from octtwisted._edge.zygote import (
    ZygoteLoop,
    decode,
    end_reason,
    end_report,
    frame,
    receive_request,
    send_request,
)


def seqpacket_pair(case: SynchronousTestCase) -> tuple[socket.socket, socket.socket]:
    one, two = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    case.addCleanup(one.close)
    case.addCleanup(two.close)
    return one, two


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.half_closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def loseWriteConnection(self) -> None:
        self.half_closed = True


class WireTests(SynchronousTestCase):
    def test_frame_is_what_a_channel_reads(self) -> None:
        """
        The zygote's framed events (two in one write, the second cut in
        two reads) reach the main process's :class:`Channel` as the
        messages sent.
        """
        got: list[dict[str, Any]] = []
        channel = Channel(got.append, lambda: None)
        channel.makeConnection(FakeTransport())  # type: ignore[arg-type]
        data = frame({"is": "ended", "pid": 7, "code": 0, "signal": None}) + frame({"is": "ended", "pid": 8})
        channel.dataReceived(data[:-3])
        channel.dataReceived(data[-3:])
        self.assertEqual(got, [{"is": "ended", "pid": 7, "code": 0, "signal": None}, {"is": "ended", "pid": 8}])

    def test_decode_wants_an_object(self) -> None:
        """A packet that is JSON but not an object, or not JSON, is refused."""
        self.assertEqual(decode(b'{"do": "start"}'), {"do": "start"})
        self.assertRaises(ValueError, decode, b"[1, 2]")
        self.assertRaises(ValueError, decode, b"{nope")

    def test_file_descriptors_travel_with_the_request(self) -> None:
        """
        A request sent with file descriptors arrives with descriptors of
        the receiver's own, open on the same files: what is written to the
        received one comes out of the sender's pipe.
        """
        main, zygote = seqpacket_pair(self)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        send_request(main, {"do": "start", "index": 1}, [w])
        os.close(w)
        got = receive_request(zygote)
        assert got is not None
        message, fds = got
        self.assertEqual(message, {"do": "start", "index": 1})
        self.assertEqual(len(fds), 1)
        os.write(fds[0], b"through")
        os.close(fds[0])
        self.assertEqual(os.read(r, 100), b"through")
        self.assertEqual(os.read(r, 100), b"")  # the received one was the last writer

    def test_requests_keep_their_bounds(self) -> None:
        """Two requests sent one after the other are received one at a time."""
        main, zygote = seqpacket_pair(self)
        send_request(main, {"n": 1})
        send_request(main, {"n": 2})
        self.assertEqual(receive_request(zygote), ({"n": 1}, []))
        self.assertEqual(receive_request(zygote), ({"n": 2}, []))

    def test_closed_socket_is_none(self) -> None:
        """The other end closed: no request (None), not an error."""
        main, zygote = seqpacket_pair(self)
        main.close()
        self.assertIsNone(receive_request(zygote))

    def test_bad_request_closes_its_descriptors(self) -> None:
        """
        A packet that is not a message is refused (ValueError), and the
        descriptors that came with it are closed, not leaked.
        """
        main, zygote = seqpacket_pair(self)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        socket.send_fds(main, [b"[not an object]"], [w])
        os.close(w)
        self.assertRaises(ValueError, receive_request, zygote)
        self.assertEqual(os.read(r, 10), b"")  # every writer is closed


class EndTests(SynchronousTestCase):
    def test_exit_status(self) -> None:
        """
        ``waitpid``'s status of a child that exited with 3 is reported as
        status 3, which the main process says as a spawned process's.
        """
        report = end_report(41, 3 << 8)
        self.assertEqual(report, {"is": "ended", "pid": 41, "code": 3, "signal": None})
        reason = end_reason(report)
        self.assertIsInstance(reason, error.ProcessTerminated)
        self.assertEqual(describe_end(reason), "exit status 3")

    def test_exit_zero(self) -> None:
        """Status 0 is ProcessDone, as Twisted says it."""
        reason = end_reason(end_report(41, 0))
        self.assertIsInstance(reason, error.ProcessDone)
        self.assertEqual(describe_end(reason), "exit status 0")

    def test_signal(self) -> None:
        """A child killed by SIGKILL is reported with its signal."""
        report = end_report(41, signal.SIGKILL)
        self.assertEqual((report["code"], report["signal"]), (None, 9))
        self.assertEqual(describe_end(end_reason(report)), "killed by signal 9 (SIGKILL)")

    def test_unknown(self) -> None:
        """An end whose status is not known (the zygote had gone) says so."""
        self.assertEqual(describe_end(error.ProcessTerminated(None)), "exit status unknown")


class LoopTests(SynchronousTestCase):
    def test_forks_a_worker_and_reports_its_end(self) -> None:
        """
        The zygote's loop forks a child for ``start``, which runs the start
        function with the descriptors it was given (here: writes to one and
        exits 5), answers the child's pid, and reports its end (status 5)
        on the events stream, as the main process reads it.
        """
        _, zygote_requests = seqpacket_pair(self)
        events_main, events_zygote = socket.socketpair()
        self.addCleanup(events_main.close)
        self.addCleanup(events_zygote.close)

        def start_worker(message: dict[str, Any], fds: list[int]) -> int:
            os.write(fds[0], f"worker {message['index']}".encode())
            return 5

        loop = ZygoteLoop(zygote_requests, events_zygote, start_worker)
        pipes = [os.pipe() for _ in range(3)]
        for r, _ in pipes:
            self.addCleanup(os.close, r)
        answer = loop.start({"do": "start", "index": 1}, [w for _, w in pipes])
        self.assertEqual(answer["is"], "started")
        self.assertEqual(os.read(pipes[0][0], 100), b"worker 1")
        self.assertEqual(os.read(pipes[0][0], 100), b"")  # the zygote closed its copies
        got: list[dict[str, Any]] = []
        channel = Channel(got.append, lambda: None)
        channel.makeConnection(FakeTransport())  # type: ignore[arg-type]
        for _ in range(100):
            self.assertTrue(loop.reap())
            if select.select([events_main], [], [], 0.1)[0]:
                break
        channel.dataReceived(events_main.recv(1000))
        self.assertEqual(got, [{"is": "ended", "pid": answer["pid"], "code": 5, "signal": None}])

    def test_refuses_a_start_without_its_descriptors(self) -> None:
        """A ``start`` without its 3 descriptors forks nothing and says why."""
        _, zygote_requests = seqpacket_pair(self)
        loop = ZygoteLoop(zygote_requests, zygote_requests, lambda m, f: 0)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        answer = loop.start({"do": "start"}, [w])
        self.assertEqual(answer["is"], "failed")
        self.assertEqual(os.read(r, 10), b"")  # and closed the one it had


class RecordingProtocol:
    def __init__(self) -> None:
        self.data: list[tuple[int, bytes]] = []
        self.ended: list[Failure] = []

    def childDataReceived(self, fd: int, data: bytes) -> None:
        self.data.append((fd, data))

    def processEnded(self, reason: Failure) -> None:
        self.ended.append(reason)


class ForkedProcessTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.protocol = RecordingProtocol()
        self.live = True
        self.process = ForkedProcess(self.protocol, 99, self.clock, lambda pid: self.live)
        self.channel = FakeTransport()
        self.pipes = {fd: self.process.pipe(fd) for fd in (TO_MAIN, 1, 2)}
        for fd, pipe in self.pipes.items():
            pipe.makeConnection(self.channel if fd == TO_MAIN else FakeTransport())  # type: ignore[arg-type]

    def test_pipes_reach_the_worker_protocol(self) -> None:
        """
        What the worker writes on its channel, stdout and stderr reaches
        the worker's protocol as a spawned process's pipes would; writes to
        the worker go to its channel, and closing its FROM_MAIN half-closes it.
        """
        self.pipes[TO_MAIN].dataReceived(b"msg")
        self.pipes[2].dataReceived(b"line\n")
        self.assertEqual(self.protocol.data, [(TO_MAIN, b"msg"), (2, b"line\n")])
        self.process.writeToChild(FROM_MAIN, b"order")
        self.assertEqual(self.channel.written, b"order")
        self.process.closeChildFD(FROM_MAIN)
        self.assertTrue(self.channel.half_closed)

    def test_ended_after_pipes_and_report(self) -> None:
        """
        ``processEnded`` comes once the zygote reported the end AND every
        pipe has reached its end (so that no last message is lost), once.
        """
        self.process.ended(error.ProcessTerminated(None, 9))
        self.pipes[TO_MAIN].connectionLost(None)
        self.pipes[1].connectionLost(None)
        self.assertEqual(self.protocol.ended, [])
        self.pipes[2].connectionLost(None)
        self.assertEqual(len(self.protocol.ended), 1)
        self.assertEqual(self.protocol.ended[0].value.signal, 9)
        self.assertRaises(error.ProcessExitedAlready, self.process.signalProcess, "KILL")

    def test_pipes_closed_before_report(self) -> None:
        """Pipes closed first: ``processEnded`` waits for the report."""
        for pipe in self.pipes.values():
            pipe.connectionLost(None)
        self.assertEqual(self.protocol.ended, [])
        self.process.ended(error.ProcessDone(0))
        self.assertEqual(len(self.protocol.ended), 1)

    def test_orphan_ends_when_its_pid_is_gone(self) -> None:
        """
        The zygote gone, the worker's end is noticed by its pid (looked at
        every 0.1 s), with an unknown status.
        """
        for pipe in self.pipes.values():
            pipe.connectionLost(None)
        self.process.orphaned()
        self.clock.advance(1)
        self.assertEqual(self.protocol.ended, [])
        self.live = False
        self.clock.advance(0.1)
        self.assertEqual(len(self.protocol.ended), 1)
        self.assertEqual(describe_end(self.protocol.ended[0].value), "exit status unknown")
