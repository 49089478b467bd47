"""
Live progress: one log line per interval while the turret fires.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from octtwisted._core import logs
from octtwisted._stats.starts import StartFigures
from octtwisted._stats.summary import Interval


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


class ProgressReporter:
    """
    Every ``interval`` seconds (0: never), logs active cannons / target,
    transactions per second, errors, p50 and p95 of the interval. The
    figures are the event's named fields (``active``, ``target``, ``tps``,
    ``transactions``, ``errors``, ``p50``, ``p95``; times in seconds), so a
    JSON log carries them as data.

    With ``in_flight``, the closed model's line says the transactions in
    flight (field ``in_flight``); once :meth:`stopping` was called, the
    line of either model says the stop is waiting for them (field
    ``stopping``, true).

    In the open model (``take_starts`` given) the line also says the
    interval's planned starts, dropped starts and start lag p99 (fields
    ``planned``, ``started``, ``dropped``, ``lag_p99``), and the target is
    the rate aimed at.

    :param target: the number of cannons aimed at (a number, or a function
        of nothing that gives it now, for stages), or the rate.
    :param take_interval: returns the figures since its last call (for
        instance :meth:`octtwisted._stats.summary.RunStats.take_interval`).
    :param take_starts: returns the start figures since its last call.
    :param in_flight: returns the transactions in flight now.
    """

    log = logs.logger(logs.PROGRESS)

    def __init__(
        self,
        clock: IReactorTime,
        interval: float,
        target: float | Callable[[], float],
        active: Callable[[], int],
        take_interval: Callable[[float], Interval],
        take_starts: Callable[[], StartFigures] | None = None,
        in_flight: Callable[[], int] | None = None,
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._target = target if callable(target) else (lambda: target)
        self._take_starts = take_starts
        self._active = active
        self._take_interval = take_interval
        self._loop = LoopingCall(self.report)
        self._loop.clock = clock
        self._in_flight = in_flight
        self._since = 0.0
        self._stopping = False

    def stopping(self) -> None:
        """The stop began: from now on the lines say what it waits for."""
        self._stopping = True

    def start(self) -> None:
        self._since = self._clock.seconds()
        if self._interval > 0:
            self._loop.start(self._interval, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def report(self) -> None:
        now = self._clock.seconds()
        interval = self._take_interval(max(now - self._since, 1e-9))
        self._since = now
        if self._stopping:
            self._report_stopping(interval)
            return
        if self._take_starts is not None:
            self._report_open(interval)
            return
        in_flight = self._in_flight() if self._in_flight is not None else None
        self.log.info(
            "progress: {active}/{target} cannons{in_flight_text}, {tps:.1f} tx/s, "
            "{errors} errors, p50 {p50_text}, p95 {p95_text}",
            active=self._active(),
            target=_whole(self._target()),
            in_flight=in_flight,
            in_flight_text="" if in_flight is None else f", {in_flight} in flight",
            **_interval_fields(interval),
        )

    def _report_stopping(self, interval: Interval) -> None:
        in_flight = self._in_flight() if self._in_flight is not None else None
        self.log.info(
            "progress: stopping, waiting for {waiting_text}, {tps:.1f} tx/s, "
            "{errors} errors, p50 {p50_text}, p95 {p95_text}",
            stopping=True,
            in_flight=in_flight,
            waiting_text=(
                "the transactions in flight" if in_flight is None
                else f"{in_flight} transaction{'' if in_flight == 1 else 's'} in flight"
            ),
            **_interval_fields(interval),
        )

    def _report_open(self, interval: Interval) -> None:
        assert self._take_starts is not None
        starts = self._take_starts()
        lag_p99 = starts.lag.p99 if starts.lag is not None else None
        self.log.info(
            "progress: {tps:.1f} tx/s (target {target:.1f}/s), {active} in flight, "
            "{planned} planned, {dropped} dropped, start lag p99 {lag_text}, "
            "{errors} errors, p50 {p50_text}, p95 {p95_text}",
            active=self._active(),
            target=self._target(),
            planned=starts.planned,
            started=starts.started,
            dropped=starts.dropped,
            lag_p99=lag_p99,
            lag_text=_ms(lag_p99),
            **_interval_fields(interval),
        )


def _interval_fields(interval: Interval) -> dict[str, Any]:
    """The interval's figures, as every progress line logs them."""
    return {
        "tps": interval.transactions_per_second,
        "transactions": interval.transactions,
        "errors": interval.errors,
        "p50": interval.p50,
        "p95": interval.p95,
        "p50_text": _ms(interval.p50),
        "p95_text": _ms(interval.p95),
    }


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 1)
