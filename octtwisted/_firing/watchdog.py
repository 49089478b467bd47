"""
A watchdog that notices when the reactor was blocked.

A non-blocking script that blocks (``time.sleep``, ``requests``) stalls
every cannon and the HQ link. The watchdog ticks every ``interval`` seconds
and logs a warning when a tick came late by more than ``threshold``.
"""

from __future__ import annotations

from typing import Callable

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from octtwisted._core import logs


class ReactorWatchdog(Service):
    log = logs.logger(logs.WATCHDOG)

    def __init__(
        self,
        clock: IReactorTime,
        monotonic: Callable[[], float],
        interval: float = 0.1,
        threshold: float = 0.5,
    ) -> None:
        self._monotonic = monotonic
        self._interval = interval
        self._threshold = threshold
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._last = 0.0
        #: how many times the reactor was found blocked
        self.stalls = 0

    def startService(self) -> None:
        super().startService()
        self._last = self._monotonic()
        self._loop.start(self._interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        now = self._monotonic()
        # No tick for ``gap`` seconds: the reactor was blocked for up to that.
        gap = now - self._last
        self._last = now
        if gap - self._interval > self._threshold:
            self.stalls += 1
            self.log.warn(
                "the reactor was blocked for {blocked:.2f}s: a script or "
                "callback blocked it (declare blocking scripts with "
                "blocking = True)",
                blocked=gap,
            )
