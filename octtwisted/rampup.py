"""
The rampup scheduler: brings cannons in one by one over ``rampup`` seconds.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


def start_delays(count: int, rampup: float) -> list[float]:
    """
    When each of ``count`` cannons starts, in seconds after ``start``:
    cannon ``i`` (from 0) at ``i * rampup / count``; all at once for a
    rampup of 0.
    """
    if rampup <= 0:
        return [0.0] * count
    step = rampup / count
    return [i * step for i in range(count)]


class RampupScheduler:
    """
    Calls ``start(i)`` for each cannon ``i`` of ``count`` at its time of
    :func:`start_delays`.

    Cannons due at once (delay 0) start synchronously in :meth:`start`; the
    others through ``clock.callLater``. :meth:`cancel` drops those not yet
    started. ``on_done`` is called once every cannon has started.
    """

    def __init__(
        self,
        clock: IReactorTime,
        count: int,
        start: Callable[[int], object],
        rampup: float,
        on_done: Callable[[], object] | None = None,
    ) -> None:
        self._clock = clock
        self._count = count
        self._start = start
        self._rampup = rampup
        self._on_done = on_done
        self._pending: dict[int, IDelayedCall] = {}
        self.started = 0

    def start(self) -> None:
        for index, delay in enumerate(start_delays(self._count, self._rampup)):
            if delay <= 0:
                self._fire(index)
            else:
                self._pending[index] = self._clock.callLater(delay, self._fire, index)

    def _fire(self, index: int) -> None:
        self._pending.pop(index, None)
        self.started += 1
        self._start(index)
        if self.started == self._count and self._on_done is not None:
            self._on_done()

    def cancel(self) -> None:
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()

    @property
    def done(self) -> bool:
        return not self._pending
