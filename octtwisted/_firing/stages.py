"""
Load stages in the closed model: the number of active cannons follows a
profile (k6's ramping-vus).

:class:`CannonStages` keeps ``count(t)`` cannons active, where the count
is the profile's value rounded down (from 0 at the start, linear within
each stage, the last target held after the last stage). A cannon is made
the first time it is needed. When the count drops, the cannons above it
finish the transaction under way and then wait, held, until the count
comes back up to them; the lowest-numbered cannons are the active ones.
One timer is pending at a time, set from the run's start for the next
change of the count.

A process that makes a :class:`~octtwisted._core.share.LoadShare` of the
load follows the same count, and keeps active those of its own cannons
numbered below it: the processes' active cannons add up to the count at
every moment, and each cannon comes in when it would in one process.
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


class CannonStages(ProfileSchedule):
    """
    :param profile: active cannons over time (every value <= ``cannons``),
        over all the processes.
    :param cannons: the config's cannons.
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
        self._count = 0  # cannons that should be active now, over all the processes
        self._over = False
        self.starts: StartStats | None = None

    def _tick(self) -> None:
        now = self._now()
        self._set_count(min(self._profile.count(now), self._share.total))
        self._wake_at(self._profile.next_count_change(now))

    def _set_count(self, count: int) -> None:
        """
        Keep cannons ``0 .. count - 1`` (global indices) active: release
        the held ones, bring in the others of this process's.
        """
        self._count = count
        for index in sorted(i for i in self._waiting if i < count):
            self._release(index)
        own = self._share.cannons_below(count)
        while self.started < own:
            self._bring_in_next()

    def hold(self, index: int) -> Deferred[None] | None:
        # ``index`` is global, as is the count: one comparison, share or not.
        if index < self._count or self._over:
            return None
        return self._wait(index)

    def cancel(self) -> None:
        self._stop_timer()
        self._over = True

    def active(self) -> int:
        return min(self._share.cannons_below(self._count), self.started)

    def take_active_peak(self) -> int:
        return 0
