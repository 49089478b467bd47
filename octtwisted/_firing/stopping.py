"""
Stopping a run's cannons, bounded in time.

:class:`BoundedStop` stops every cannon: transactions in flight may end
within ``stop_timeout``; then they are cancelled (their results say so),
and given ``grace`` seconds more; then the stop is over anyway, and the
cannons still running are abandoned (the run discards what they make).
When it begins with transactions in flight it logs how many it waits for,
and :attr:`BoundedStop.in_flight` counts those still awaited.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from octtwisted._core import logs
from octtwisted._core.deferreds import cancel_call
from octtwisted._firing.steps import FiringCannon

#: Seconds to wait for cancelled transactions to end after the stop timeout.
CANCEL_GRACE = 1.0


class BoundedStop:
    log = logs.logger(logs.TURRET)

    def __init__(self, clock: IReactorTime, timeout: float, grace: float = CANCEL_GRACE) -> None:
        self._clock = clock
        self._timeout = timeout
        self._grace = grace
        self._timer: IDelayedCall | None = None
        #: fires once every cannon stopped, or the grace ran out
        self.done: Deferred[None] = Deferred()
        #: transactions in flight when the stop began (cannons that did
        #: not stop at once)
        self.in_flight_at_start = 0
        #: of those, the ones still awaited (0 once the stop is over)
        self.in_flight = 0

    def stop(self, cannons: list[FiringCannon]) -> Deferred[None]:
        started = [c for c in cannons if c.started]
        if not started:
            self._over()
            return self.done
        stops = [c.stop() for c in started]
        waiting = [d for d in stops if not d.called]
        self.in_flight_at_start = self.in_flight = len(waiting)
        if not waiting:
            self._over()
            return self.done
        self.log.info(
            "waiting up to {timeout:g} s for {in_flight} transaction{s} in flight",
            timeout=self._timeout,
            in_flight=len(waiting),
            s="" if len(waiting) == 1 else "s",
        )
        for d in waiting:
            d.addBoth(self._one_ended)
        self._timer = self._clock.callLater(self._timeout, self._cancel_in_flight, started)
        defer.DeferredList(waiting).addCallback(lambda _: self._over())
        return self.done

    def _one_ended(self, result: object) -> object:
        self.in_flight = max(self.in_flight - 1, 0)
        return result

    def _cancel_in_flight(self, cannons: list[FiringCannon]) -> None:
        timeout = self._timeout
        self.log.warn(
            "stop timeout ({timeout}s): cancelling transactions in flight",
            timeout=timeout,
        )
        reason = f"cancelled: still running at the stop timeout ({timeout:g}s)"
        for cannon in cannons:
            cannon.cancel_in_flight(reason)
        self._timer = self._clock.callLater(self._grace, self._give_up)

    def _give_up(self) -> None:
        self._timer = None
        self.log.error("some cannons did not stop; going on without them")
        self._over()

    def _over(self) -> None:
        cancel_call(self._timer)
        self._timer = None
        self.in_flight = 0
        if not self.done.called:
            self.done.callback(None)
