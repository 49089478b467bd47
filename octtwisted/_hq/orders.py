"""
Reading the HQ's orders: from frames to the orders for this turret.

:class:`OrderReader` decodes each message (:mod:`octtwisted._hq.wire`),
ignores the orders addressed to other turrets, and logs bad ones, at most
a burst per period (a flood of bad input must not become a flood of logs),
with one line counting those it did not log.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from octtwisted._core import logs
from octtwisted._core.deferreds import cancel_call
from octtwisted._core.interfaces import OrderHandler
from octtwisted._hq.ratelimit import WarningLimiter
from octtwisted._hq.wire import BadOrder, decode_order


class OrderReader:
    """
    :param uuid: this turret's id: orders broadcast (topic ``""``) or
        addressed to it are handed on.
    """

    log = logs.logger(logs.HQ_LINK)

    def __init__(self, clock: IReactorTime, uuid: str) -> None:
        self._clock = clock
        #: this turret's id (its orders' topic)
        self.uuid = uuid
        self._limiter = WarningLimiter(clock)
        self._suppressed_report: IDelayedCall | None = None
        #: receives every order for this turret
        self.handler: OrderHandler | None = None

    def frames_received(self, frames: list[bytes]) -> None:
        try:
            order = decode_order(frames)
        except BadOrder as e:
            self._bad(frames, str(e))
            return
        if order.topic not in ("", self.uuid):
            return  # addressed to another turret
        if self.handler is not None:
            self.handler(order)

    def _bad(self, frames: list[bytes], problem: str) -> None:
        if self._limiter.allow():
            self.log.warn(
                "ignored a bad order: {problem} (frame starts {head!r})",
                problem=problem,
                head=frames[0][:60] if frames else b"",
            )
        elif self._suppressed_report is None:
            self._suppressed_report = self._clock.callLater(
                self._limiter.period, self._report_suppressed
            )

    def _report_suppressed(self) -> None:
        self._suppressed_report = None
        count = self._limiter.take_suppressed()
        if count:
            self.log.warn(
                "{count} more bad orders ignored and not logged in the last {period:g}s",
                count=count,
                period=self._limiter.period,
            )

    def close(self) -> None:
        cancel_call(self._suppressed_report)
        self._suppressed_report = None
