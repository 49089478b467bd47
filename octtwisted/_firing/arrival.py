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

A process that makes a :class:`~octtwisted._core.share.LoadShare` of the
load plans only the starts ``n`` of its share, each at the time start
``n`` has in the whole schedule; it makes at most its share's cannons
(numbered with their global indices), and its start figures count its own
starts: the processes' planned starts add up to those of one process.
(Only :data:`EARLY` depends on the other starts: one process wakes for
every start, and makes those planned within ``EARLY`` after a wake-up in
it; a process that does not wake then makes its start at its time.)
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from octtwisted._core.share import LoadShare
from octtwisted._firing.profile import Profile
from octtwisted._firing.schedule import BringIn
from octtwisted._firing.timed import ProfileSchedule
from octtwisted._stats.starts import StartStats

#: Starts planned this close after now are made now: a timer cannot wake
#: the reactor more precisely than epoll's millisecond.
EARLY = 0.0005


class ArrivalSchedule(ProfileSchedule):
    """
    :param profile: starts per second over time, over all the processes.
    :param cannons: the config's cannons: the most transactions in flight
        at once (a share's cannons in a share's process).
    :param share: the part of the load this process makes (None: all of
        it).
    """

    def __init__(
        self,
        clock: IReactorTime,
        profile: Profile,
        cannons: int,
        bring_in: BringIn,
        on_done: Callable[[], object],
        share: LoadShare | None = None,
    ) -> None:
        super().__init__(clock, profile, cannons, bring_in, on_done, share)
        self._number = self._share.next_start(0)  # the next start this process plans
        self._next = profile.time_of_total(self._number)  # its planned time (None: never)
        self._given: dict[int, float] = {}  # cannon -> planned time of its start
        self.starts: StartStats | None = StartStats()
        self._active_peak = 0

    def _tick(self) -> None:
        starts = self.starts
        assert starts is not None
        profile, share = self._profile, self._share
        now = self._now()
        planned, number = self._next, self._number
        while planned is not None and planned <= now + EARLY:
            starts.plan()
            self._give(planned)
            number = share.next_start(number + 1)
            planned = profile.time_of_total(number)
        self._next, self._number = planned, number
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
            self._given[self._next_index()] = planned
            self._bring_in_next()
        else:
            assert self.starts is not None
            self.starts.drop()

    def hold(self, index: int) -> Deferred[None] | None:
        planned = self._given.pop(index, None)
        if planned is not None:
            assert self.starts is not None
            self.starts.start(self._now() - planned)
            self._active_peak = max(self._active_peak, self.active())
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

    def take_active_peak(self) -> int:
        """
        The most transactions in flight at once since the last call (the
        count as each began); then it counts from now.
        """
        peak, self._active_peak = self._active_peak, self.active()
        return max(peak, self._active_peak)
