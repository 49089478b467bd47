"""
What the schedules that follow a load profile share: one timer pending at
a time, set for a time counted from the run's start (so lateness never
adds up), cannons brought in one after the other, and the target read
from the profile. A process that makes a
:class:`~octtwisted._core.share.LoadShare` of the load brings in only its
own cannons, and aims at its part of the target.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from octtwisted._core.deferreds import cancel_call
from octtwisted._core.share import LoadShare
from octtwisted._firing.profile import Profile
from octtwisted._firing.schedule import BringIn


class ProfileSchedule:
    """
    :param profile: the load over time (cannons or starts per second).
    :param cannons: the config's cannons.
    :param share: the part of the load this process makes (None: all of
        it); the schedule brings in at most the share's cannons.

    A subclass defines ``_tick``, called at :meth:`start` and at every
    time given to :meth:`_wake_at`.
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
        if share is None:
            share = LoadShare.whole(cannons)
        elif share.total != cannons:
            raise ValueError(f"a share of {share.total} cannons for a schedule of {cannons}")
        self._share = share
        self._clock = clock
        self._profile = profile
        #: the most cannons this process brings in
        self._cannons = share.cannons
        self._bring_in = bring_in
        self._on_done = on_done
        self._base = 0.0
        self._timer: IDelayedCall | None = None
        #: cannons held by the schedule, in the order they began to wait
        self._waiting: dict[int, Deferred[None]] = {}
        #: cannons brought in so far (by this process)
        self.started = 0
        self.holds = True

    def start(self) -> None:
        self._base = self._clock.seconds()
        self._tick()

    def _tick(self) -> None:
        raise NotImplementedError

    def _now(self) -> float:
        """Seconds since :meth:`start`."""
        return self._clock.seconds() - self._base

    def _wake_at(self, at: float | None) -> None:
        """
        Call ``_tick`` at ``at`` seconds after the start (None: never).
        """
        self._timer = None
        if at is not None:
            self._timer = self._clock.callLater(max(0.0, at - self._now()), self._tick)

    def _next_index(self) -> int:
        """
        The global index of the next cannon to bring in.
        """
        return self._share.cannon_index(self.started)

    def _bring_in_next(self) -> int:
        """
        Bring the next cannon in; return its (global) index.
        """
        index = self._next_index()
        self.started += 1
        self._bring_in(index)
        if self.started == self._cannons:
            self._on_done()
        return index

    def _wait(self, index: int) -> Deferred[None]:
        """
        Hold cannon ``index`` until :meth:`_release` (or until it is
        stopped, which cancels the wait).
        """
        waiting: Deferred[None] = Deferred(lambda d: self._forget(index))
        self._waiting[index] = waiting
        return waiting

    def _forget(self, index: int) -> None:
        """A held cannon stopped waiting (it was stopped)."""
        self._waiting.pop(index, None)

    def _release(self, index: int) -> None:
        self._waiting.pop(index).callback(None)

    def _stop_timer(self) -> None:
        cancel_call(self._timer)
        self._timer = None

    def target(self) -> float:
        """
        The profile's value now; a share's part of it: in proportion to
        its cannons.
        """
        value = self._profile.value(self._now())
        share = self._share
        if share.count == 1:
            return value
        return value * share.cannons / share.total
