"""
Stopping a run's cannons, bounded in time.

:class:`BoundedStop` stops every cannon: transactions in flight may end
within ``stop_timeout``; then they are cancelled (their results say so),
and given ``grace`` seconds more; then the stop is over anyway, and the
cannons still running are abandoned (the run discards what they make).
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

    def stop(self, cannons: list[FiringCannon]) -> Deferred[None]:
        started = [c for c in cannons if c.started]
        if not started:
            self._over()
            return self.done
        self._timer = self._clock.callLater(self._timeout, self._cancel_in_flight, started)
        stopping = defer.DeferredList([c.stop() for c in started])
        stopping.addCallback(lambda _: self._over())
        return self.done

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
        if not self.done.called:
            self.done.callback(None)
