"""
Start schedules: when a run's cannons come in, and when they fire. This
module says what a schedule is; the schedules themselves live below it,
one module each, and :mod:`~octtwisted._firing.schedule_choice` chooses
among them.

A run asks its :class:`StartSchedule` to bring cannons in (``bring_in(i)``
makes and starts cannon ``i``, a :data:`BringIn`); the schedule decides
when. Before each transaction a cannon asks the schedule's
:meth:`~StartSchedule.hold` whether it may go on; a schedule that paces
the transactions themselves (an arrival rate) or stops some cannons for a
while (load stages) holds them there.

- :class:`~octtwisted._firing.rampup.RampupScheduler`: the classic OCT
  rampup, all ``cannons`` in one by one over ``rampup`` seconds, firing
  back to back (closed model);
- :class:`~octtwisted._firing.stages.CannonStages`: the number of active
  cannons follows ``stages`` (closed model);
- :class:`~octtwisted._firing.arrival.ArrivalSchedule`: transactions start
  at planned times, ``arrival_rate`` per second, ramped or following
  ``stages`` (open model).

The last two follow a load profile and share
:class:`~octtwisted._firing.timed.ProfileSchedule`.
"""

from __future__ import annotations

from typing import Callable, Protocol

from twisted.internet.defer import Deferred

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

    def take_active_peak(self) -> int:
        """
        The most transactions the schedule saw in flight at once since the
        last call (then it counts from now); 0 when it does not follow them
        (the closed model: the run counts its busy cannons itself).
        """

    def target(self) -> float:
        """
        What the schedule aims at now: active cannons, or starts per second.
        """
