"""
The open workload model: transactions start at planned times, whatever
the response times.

:class:`ArrivalSchedule` plans the ``n``-th start (from 0) at the time the
rate profile's integral reaches ``n`` (so ``1 / rate`` apart at a constant
rate), all computed from the run's start: a timer that fires late shifts
nothing that follows, and every start due when it fires is made in that
turn of the reactor. Each planned start takes an idle cannon (the one idle
longest); cannons are made as they are needed, up to ``cannons``, the most
transactions in flight at once. When none is idle and all are made, the
start is **dropped and counted**, never delayed nor queued. A cannon that
was given a start records its lag (its actual start minus the planned one)
when it begins the transaction.

Conservation: ``planned == started + dropped``, exactly; a start given to
a cannon that the stop keeps from beginning it is counted as dropped.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from octtwisted._firing.profile import Profile
from octtwisted._firing.schedule import BringIn
from octtwisted._firing.timed import ProfileSchedule
from octtwisted._stats.starts import StartStats

#: Starts planned this close after now are made now: a timer cannot wake
#: the reactor more precisely than epoll's millisecond.
EARLY = 0.0005


class ArrivalSchedule(ProfileSchedule):
    """
    :param profile: starts per second over time.
    :param cannons: the most cannons (transactions in flight at once).
    """

    def __init__(
        self,
        clock: IReactorTime,
        profile: Profile,
        cannons: int,
        bring_in: BringIn,
        on_done: Callable[[], object],
    ) -> None:
        super().__init__(clock, profile, cannons, bring_in, on_done)
        self._next: float | None = 0.0  # planned time of the next start
        self._given: dict[int, float] = {}  # cannon -> planned time of its start
        self.starts: StartStats | None = StartStats()

    def _tick(self) -> None:
        starts = self.starts
        assert starts is not None
        profile = self._profile
        now = self._now()
        planned = self._next
        while planned is not None and planned <= now + EARLY:
            starts.plan()
            self._give(planned)
            planned = profile.time_of_total(starts.planned)
        self._next = planned
        self._wake_at(planned)

    def _give(self, planned: float) -> None:
        """
        Give the start planned at ``planned`` to an idle cannon, or a new
        one, or drop it.
        """
        if self._waiting:
            index = next(iter(self._waiting))  # the one idle longest
            self._given[index] = planned
            self._release(index)
        elif self.started < self._cannons:
            self._given[self.started] = planned
            self._bring_in_next()
        else:
            assert self.starts is not None
            self.starts.drop()

    def hold(self, index: int) -> Deferred[None] | None:
        planned = self._given.pop(index, None)
        if planned is not None:
            assert self.starts is not None
            self.starts.start(self._now() - planned)
            return None
        return self._wait(index)  # idle

    def cancel(self) -> None:
        self._stop_timer()
        self._next = None
        if self._given and self.starts is not None:
            # Given, but the stop keeps these cannons from beginning them.
            self.starts.drop(len(self._given))
            self._given.clear()

    def active(self) -> int:
        return self.started - len(self._waiting)
