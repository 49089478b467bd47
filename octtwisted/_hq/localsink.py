"""
A result sink that keeps everything in the process.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred

from octtwisted._core.messages import Result, StatusReport


class LocalSink:
    """
    A :class:`~octtwisted._core.interfaces.ResultSink` with no transport: always
    "connected", never full, nothing to flush. A standalone run uses it as
    it is (the turret's summary sees every result, exactly as it would go
    to an HQ); :class:`octtwisted.testing.RecordingSink` records what it
    is given.
    """

    def __init__(self) -> None:
        self.dropped = 0
        self.delivered = 0

    def send_status(self, status: StatusReport) -> None:
        pass

    def send_result(self, result: Result) -> None:
        self.delivered += 1

    def pending(self) -> int:
        return 0

    def on_connected(self, listener: Callable[[], None]) -> None:
        pass  # always connected

    def on_disconnected(self, listener: Callable[[], None]) -> None:
        pass  # never disconnected

    def run_started(self) -> None:
        pass

    def run_ended(self) -> None:
        pass

    def wait_for_room(self, below: int) -> Deferred[None]:
        return defer.succeed(None)

    def discard_queued(self) -> int:
        return 0  # nothing is ever queued

    def flush(self, timeout: float) -> Deferred[None]:
        return defer.succeed(None)
