"""
Backpressure: cannons hold back while too many results wait for the HQ.

While ``limit`` results (``max_pending_results``) are pending in the result
sink, every cannon that is about to start a transaction is handed a
Deferred to wait on; all of them are released together once the queue is
down to half the limit.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from octtwisted._core import logs
from octtwisted._core.deferreds import when_fired
from octtwisted._core.interfaces import ResultSink


class Backpressure:
    log = logs.logger(logs.TURRET)

    def __init__(self, sink: ResultSink, limit: int) -> None:
        self._sink = sink
        self._limit = limit
        self._holding: Deferred[None] | None = None

    def hold(self) -> Deferred[None] | None:
        """
        None to go on at once, or a Deferred to wait for first (a cannon's
        ``throttle``).
        """
        if self._sink.pending() < self._limit:
            return None
        if self._holding is None:
            self.log.warn(
                "{pending} results wait for the HQ: cannons paused until "
                "it catches up",
                pending=self._sink.pending(),
            )
            self._holding = self._sink.wait_for_room(max(1, self._limit // 2))
            self._holding.addCallback(self._resume)
        return when_fired(self._holding)

    def _resume(self, _: object) -> None:
        self._holding = None
        self.log.info("the HQ caught up: cannons resume")
