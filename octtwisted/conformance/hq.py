"""
The kit's HQ side: plain pyzmq sockets bound on 127.0.0.1, used from a
blocking thread (no reactor), and the turret process it drives.

Every wait here takes a timeout and returns when it runs out; every
process started is ended by :meth:`TurretProcess.end`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import attrs
import zmq

T = TypeVar("T")

#: How often the waits look at the turret process (seconds).
_SLICE = 0.05


@attrs.frozen
class Frame:
    """
    One frame received from the turret, as the HQ would read it.

    :ivar at: when it was received (``time.time()``).
    :ivar raw: its bytes.
    :ivar data: the decoded JSON, or None if it is not JSON.
    :ivar kind: ``"status"`` (a JSON object with a ``status`` key),
        ``"result"`` (any other JSON object) or ``"junk"``.
    """

    at: float
    raw: bytes
    data: Any
    kind: str

    @property
    def hq_sees_status(self) -> bool:
        """
        The real HQ's test: any frame whose text contains ``status`` is
        taken as a status message.
        """
        return b"status" in self.raw


def classify(raw: bytes, at: float) -> Frame:
    """
    Decode one frame and say what it is by its content (not by the HQ's
    substring test, so a misfiled result is still seen as a result).
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        return Frame(at=at, raw=raw, data=None, kind="junk")
    if not isinstance(data, dict):
        return Frame(at=at, raw=raw, data=data, kind="junk")
    return Frame(at=at, raw=raw, data=data, kind="status" if "status" in data else "result")


class WireHQ:
    """
    An OCT HQ's two sockets: PUB (orders) and PULL (status and results,
    high-water mark 0 as in the real HQ), bound on free ports of
    127.0.0.1. Not thread-safe: one per thread.
    """

    def __init__(self, context: zmq.Context[Any], host: str = "127.0.0.1") -> None:
        self.host = host
        self.frames: list[Frame] = []
        self._pub = context.socket(zmq.PUB)
        self._pub.setsockopt(zmq.LINGER, 0)
        self._pub.bind(f"tcp://{host}:*")
        self._pull = context.socket(zmq.PULL)
        self._pull.setsockopt(zmq.LINGER, 0)
        self._pull.setsockopt(zmq.RCVHWM, 0)
        self._pull.bind(f"tcp://{host}:*")
        self.publisher_port = _port(self._pub)
        self.rc_port = _port(self._pull)

    def config_keys(self) -> dict[str, Any]:
        """
        The ``hq_*`` keys of a turret config that point at this HQ.
        """
        return {"hq_address": self.host, "hq_publisher": self.publisher_port, "hq_rc": self.rc_port}

    def publish(self, command: str, msg: Any = None, topic: str = "") -> float:
        """
        Publish an order as the real HQ does: one frame ``"<topic> <json>"``,
        the JSON compact (as ``ujson`` writes it).
        :return: when it was published.
        """
        body = json.dumps({"command": command, "msg": msg}, separators=(",", ":"))
        self._pub.send(f"{topic} {body}".encode("utf-8"))
        return time.time()

    def publish_raw(self, frames: bytes | list[bytes]) -> None:
        """
        Publish anything: one frame, or a list of frames as one message.
        """
        if isinstance(frames, bytes):
            self._pub.send(frames)
        else:
            self._pub.send_multipart(frames)

    def receive(self, timeout: float) -> int:
        """
        Receive for up to ``timeout`` seconds; returns as soon as at least
        one message arrived (with every message already waiting).
        :return: how many frames were recorded.
        """
        before = len(self.frames)
        if self._pull.poll(max(0, int(timeout * 1000))):
            while True:
                try:
                    parts = self._pull.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                at = time.time()
                # Each part of a multipart message is one message to the
                # HQ, which reads them one by one.
                for part in parts:
                    self.frames.append(classify(part, at))
        return len(self.frames) - before

    def statuses(self, after: int = 0) -> list[Frame]:
        return [f for f in self.frames[after:] if f.kind == "status"]

    def results(self, after: int = 0) -> list[Frame]:
        return [f for f in self.frames[after:] if f.kind == "result"]

    def close(self) -> None:
        self._pub.close(0)
        self._pull.close(0)


def _port(socket: zmq.Socket[Any]) -> int:
    endpoint = socket.getsockopt(zmq.LAST_ENDPOINT)
    assert isinstance(endpoint, bytes)
    return int(endpoint.decode().rsplit(":", 1)[1])


class TurretProcess:
    """
    A turret process the kit started (through a launcher), and how to end
    it: SIGTERM, then SIGKILL (to its process group when it leads one).
    """

    def __init__(self, popen: subprocess.Popen[bytes], log: Path | None) -> None:
        self.popen = popen
        self.log = log
        try:
            self.leads_group = os.getpgid(popen.pid) == popen.pid
        except ProcessLookupError:
            self.leads_group = False

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self.popen.poll()

    def wait_exit(self, timeout: float) -> int | None:
        """
        :return: the exit status, or None if it still runs after ``timeout``.
        """
        try:
            return self.popen.wait(max(timeout, 0))
        except subprocess.TimeoutExpired:
            return None

    def signal(self, number: int) -> None:
        if self.alive:
            try:
                self.popen.send_signal(number)
            except ProcessLookupError:
                pass

    def end(self, grace: float) -> str:
        """
        End the process if it still runs: SIGTERM, then SIGKILL after
        ``grace`` seconds. Its process group is killed too when the
        process leads one (the kit starts commands in a new session).
        :return: how it ended.
        """
        if not self.alive:
            code = self.popen.returncode
            self._kill_group()
            return f"exited {code}"
        self.signal(signal.SIGTERM)
        if self.wait_exit(grace) is not None:
            self._kill_group()
            return f"ended by SIGTERM ({self.popen.returncode})"
        self._kill_group()
        if self.alive:
            self.signal(signal.SIGKILL)
        self.wait_exit(5.0)
        return "killed (SIGKILL)"

    def _kill_group(self) -> None:
        """
        Kill what is left of the process group the process leads, if it
        leads one (children of a ``sh -c`` command, for instance).
        """
        if not self.leads_group:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def last_output(self, chars: int = 160) -> str:
        """
        The last non-empty line of the turret's log, if there is one.
        """
        if self.log is None:
            return ""
        try:
            lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return lines[-1].strip()[:chars] if lines else ""


def wait_for(
    hq: WireHQ,
    test: Callable[[], T | None],
    timeout: float,
    process: TurretProcess | None = None,
) -> T | None:
    """
    Receive until ``test()`` returns something other than None, for at most
    ``timeout`` seconds; stops early (returning None) if ``process`` ends.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = test()
        if value is not None:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        if process is not None and not process.alive:
            hq.receive(0.2)  # what it sent before dying
            return test()
        hq.receive(min(left, _SLICE * 4))


def pump(hq: WireHQ, seconds: float) -> None:
    """
    Receive everything for ``seconds``.
    """
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        hq.receive(min(left, _SLICE * 4))
