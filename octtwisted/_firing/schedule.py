"""
Start schedules: when a run's cannons come in, and when they fire.

A run asks its :class:`StartSchedule` to bring cannons in (``bring_in(i)``
makes and starts cannon ``i``); the schedule decides when. Before each
transaction a cannon asks the schedule's :meth:`~StartSchedule.hold`
whether it may go on; a schedule that paces the transactions themselves
(an arrival rate) or stops some cannons for a while (load stages) holds
them there.

- :class:`RampupScheduler`: the classic OCT rampup, all ``cannons`` in one
  by one over ``rampup`` seconds, firing back to back (closed model);
- :class:`~octtwisted._firing.stages.CannonStages`: the number of active
  cannons follows ``stages`` (closed model);
- :class:`~octtwisted._firing.arrival.ArrivalSchedule`: transactions start
  at planned times, ``arrival_rate`` per second, ramped or following
  ``stages`` (open model).

:func:`schedule_for` is the one place that chooses, from the config.
"""

from __future__ import annotations

from typing import Callable, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from octtwisted._core.config import TurretConfig
from octtwisted._core.deferreds import cancel_call
from octtwisted._stats.starts import StartStats

#: Called by a schedule to make and start cannon ``i``.
BringIn = Callable[[int], object]


class StartSchedule(Protocol):
    #: cannons brought in so far
    started: int
    #: whether :meth:`hold` may ever hold a cannon (False: it is not asked,
    #: which saves two calls a transaction on the hot path)
    holds: bool
    #: the open model's start figures, or None (closed model)
    starts: StartStats | None

    def start(self) -> None:
        """
        Begin: times count from now; cannons due at once come in now.
        """

    def cancel(self) -> None:
        """
        Bring no more cannons in, start no more transactions.
        """

    def hold(self, index: int) -> Deferred[None] | None:
        """
        Cannon ``index`` is about to start a transaction: None to go on, or
        a Deferred to wait for first.
        """

    def active(self) -> int:
        """
        How many cannons fire now (brought in and not held by the schedule).
        """

    def target(self) -> float:
        """
        What the schedule aims at now: active cannons, or starts per second.
        """


def schedule_for(
    config: TurretConfig,
    clock: IReactorTime,
    bring_in: BringIn,
    on_done: Callable[[], object],
) -> StartSchedule:
    """
    The start schedule the config asks for; ``on_done`` is called once
    every cannon has come in.
    """
    from octtwisted._firing.arrival import ArrivalSchedule
    from octtwisted._firing.profile import Profile
    from octtwisted._firing.stages import CannonStages

    steps = [(stage.duration, stage.target) for stage in config.stages]
    if config.arrival_rate is not None:
        if steps:
            profile = Profile(steps, initial=config.arrival_rate)
        else:
            profile = Profile.ramp(config.arrival_rate, config.rampup)
        return ArrivalSchedule(clock, profile, config.cannons, bring_in, on_done)
    if steps:
        return CannonStages(clock, Profile(steps), config.cannons, bring_in, on_done)
    return RampupScheduler(clock, config.cannons, bring_in, config.rampup, on_done=on_done)


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
        self._count = self._cannons = count
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
        step = self._step
        while self.started < self._count and self.started * step <= elapsed + 1e-9:
            index = self.started
            self.started += 1
            self._start(index)
        if self.started < self._count:
            wait = self.started * step - (self._clock.seconds() - self._base)
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

    def target(self) -> float:
        return self._cannons
