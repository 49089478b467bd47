"""
Rate-limited warnings: a flood of bad input must not become a flood of logs.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime


class WarningLimiter:
    """
    Allows ``burst`` warnings per ``period`` seconds and counts the rest.

    ``allow()`` says whether to log this one; ``take_suppressed()`` returns
    (and resets) how many were held back, for a summary line.
    """

    def __init__(self, clock: IReactorTime, burst: int = 5, period: float = 10.0) -> None:
        self._clock = clock
        self._burst = burst
        self.period = period
        self._window_start = float("-inf")
        self._in_window = 0
        self._suppressed = 0

    def allow(self) -> bool:
        now = self._clock.seconds()
        if now - self._window_start >= self.period:
            self._window_start = now
            self._in_window = 0
        if self._in_window < self._burst:
            self._in_window += 1
            return True
        self._suppressed += 1
        return False

    def take_suppressed(self) -> int:
        count, self._suppressed = self._suppressed, 0
        return count
