"""
The pipe between the turret's main process and each of its worker
processes (``--processes``): framed JSON messages, both ways.

The main process spawns each worker with two more pipes than the usual
three: the worker reads the main process's messages on its file
descriptor :data:`FROM_MAIN` and writes its own on :data:`TO_MAIN`. Each
message is a JSON object (orjson), framed with a 32-bit length
(``Int32StringReceiver``). A worker whose pipe from the main process
closes knows that the main process has gone, however it ended (SIGKILL
included), and stops.

From the main process (``"do"``): ``start`` (with the HQ's ``context``),
``stop``, ``supersede`` (the next run's start came while this one stops:
what it still queues for the HQ is discarded), ``exit``.

From a worker (``"is"``): ``ready`` (with its ``pid``), ``part`` (the
figures recorded since its last part, its active and started cannons;
10 times a second while it fires), ``stopped`` (its run has stopped: the
last part, and what it started and dropped).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import orjson
from twisted.internet.interfaces import ITransport
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from octtwisted._core import logs

#: The worker's file descriptor for the main process's messages.
FROM_MAIN = 3
#: The worker's file descriptor for its messages to the main process.
TO_MAIN = 4

#: The largest message: a part holds at most a few thousand staged values
#: per timer.
MAX_MESSAGE = 64 * 1024 * 1024

Message = dict[str, Any]


class Channel(Int32StringReceiver):
    """
    One end of the pipe: calls ``on_message`` with each message received,
    ``on_lost`` once the other end has gone.
    """

    MAX_LENGTH = MAX_MESSAGE
    log = logs.logger(logs.PROCESSES)

    def __init__(self, on_message: Callable[[Message], None], on_lost: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self.open = False

    def connectionMade(self) -> None:
        self.open = True

    def stringReceived(self, data: bytes) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            self.log.error("a message between processes is not JSON: {problem}", problem=str(e))
            return
        if not isinstance(message, dict):
            self.log.error("a message between processes is not an object: {message!r}", message=message)
            return
        self._on_message(message)

    def lengthLimitExceeded(self, length: int) -> None:
        self.log.error("a message between processes is too long ({length} bytes)", length=length)
        super().lengthLimitExceeded(length)

    def send(self, message: Message) -> None:
        """Send one message, if the pipe is open."""
        if self.open and self.transport is not None:
            self.sendString(orjson.dumps(message))

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.open:
            self.open = False
            self._on_lost()


@implementer(ITransport)
class ChildPipe:
    """
    The transport of the main process's end: writes go to the worker's
    :data:`FROM_MAIN`.
    """

    def __init__(self, write_to_child: Callable[[int, bytes], None], close: Callable[[int], None]) -> None:
        self._write = write_to_child
        self._close = close

    def write(self, data: bytes) -> None:
        self._write(FROM_MAIN, data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self._write(FROM_MAIN, b"".join(data))

    def loseConnection(self) -> None:
        self._close(FROM_MAIN)

    def getPeer(self) -> Any:
        return None

    def getHost(self) -> Any:
        return None
