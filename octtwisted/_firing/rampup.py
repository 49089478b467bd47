"""
The classic OCT rampup (closed model): :class:`RampupScheduler` brings
``cannons`` in one by one over ``rampup`` seconds, at the times of
:func:`start_delays`, and never holds them: they fire back to back. A
process that makes a :class:`~octtwisted._core.share.LoadShare` of the
load brings in only its own cannons, each at its time in the whole
schedule.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from octtwisted._core.deferreds import cancel_call
from octtwisted._core.share import LoadShare
from octtwisted._stats.starts import StartStats


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
    :func:`start_delays`, counted from :meth:`start`.

    Only one timer is pending at a time: the one for the next cannon due.
    When it fires, every cannon whose time has come starts, then the next
    timer is set from the start time, so lateness does not add up, and
    scheduling 20,000 cannons costs nothing up front. Cannons due at once
    (delay 0) start synchronously in :meth:`start`. :meth:`cancel` drops
    those not yet started. ``on_done`` is called once every cannon has
    started.

    With a ``share``, ``count`` is still the config's cannons, and only
    the share's cannons come in, each at its time in the whole schedule:
    ``start(i)`` gets the global index ``i``, and :attr:`started`
    counts the cannons this process brought in.
    """

    def __init__(
        self,
        clock: IReactorTime,
        count: int,
        start: Callable[[int], object],
        rampup: float,
        on_done: Callable[[], object] | None = None,
        share: LoadShare | None = None,
    ) -> None:
        self._clock = clock
        if share is None:
            # every cannon: the i-th comes in as cannon i
            self._count, self._first, self._stride = count, 0, 1
        else:
            if share.total != count:
                raise ValueError(f"a share of {share.total} cannons for a rampup of {count}")
            # the share's j-th cannon is global cannon first + j * stride
            self._count, self._first, self._stride = share.cannons, share.index, share.count
        self._cannons = self._count
        self._start = start
        self._step = rampup / count if rampup > 0 and count else 0.0
        self._on_done = on_done
        self._call: IDelayedCall | None = None
        self._base = 0.0
        self.started = 0
        self.starts: StartStats | None = None
        self.holds = False

    def start(self) -> None:
        self._base = self._clock.seconds()
        self._tick()

    def _tick(self) -> None:
        self._call = None
        elapsed = self._clock.seconds() - self._base
        step, first, stride = self._step, self._first, self._stride
        while self.started < self._count:
            index = first + self.started * stride
            if index * step > elapsed + 1e-9:
                break
            self.started += 1
            self._start(index)
        if self.started < self._count:
            wait = (first + self.started * stride) * step - (self._clock.seconds() - self._base)
            self._call = self._clock.callLater(max(0.0, wait), self._tick)
        elif self._on_done is not None:
            self._on_done()

    def cancel(self) -> None:
        cancel_call(self._call)
        self._call = None
        self._count = self.started

    @property
    def done(self) -> bool:
        return self.started >= self._count

    def hold(self, index: int) -> Deferred[None] | None:
        return None

    def active(self) -> int:
        return self.started

    def take_active_peak(self) -> int:
        return 0

    def target(self) -> float:
        return self._cannons
