"""
Injected time.

Everything that schedules (rampup, cannons, timeouts, heartbeats) uses
``Clocks.reactor``, an ``IReactorTime``; durations are read from a monotonic
clock and ``epoch`` from the wall clock. Tests build a :class:`Clocks` around
one ``twisted.internet.task.Clock`` and drive all three together.
"""

from __future__ import annotations

import time
from typing import Callable

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock


@attrs.frozen
class Clocks:
    """
    :ivar reactor: schedules calls (``callLater``).
    :ivar monotonic: seconds for durations; never goes back.
    :ivar wall: Unix time, for ``epoch``.
    """

    reactor: IReactorTime
    monotonic: Callable[[], float] = time.perf_counter
    wall: Callable[[], float] = time.time

    @classmethod
    def fake(cls, clock: Clock | None = None) -> "Clocks":
        """
        All three clocks driven by one ``task.Clock`` (made if not given).
        """
        clock = clock if clock is not None else Clock()
        return cls(reactor=clock, monotonic=clock.seconds, wall=clock.seconds)
