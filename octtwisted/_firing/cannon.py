"""
A cannon: one virtual user, firing its transaction in a loop.

Every cannon is a :class:`Cannon`: its :class:`CannonSettings`, and one
lifecycle around a ``LoopingCall`` (start, stop, a crash of its own
machinery, the waits between transactions that a stop cuts short). Where
its transactions run is its :class:`Barrel`, the one part that differs:

- :class:`~octtwisted._firing.on_reactor.ReactorBarrel` calls the steps on
  the reactor (a script that may return Deferreds or coroutines);
- :class:`~octtwisted._firing.threaded.ThreadBarrel` hands bursts of
  transactions to the cannon's own thread (a blocking script).

Either way a cannon reports exactly one
:class:`~octtwisted._core.messages.Result` per transaction (built by
:func:`~octtwisted._firing.outcome.result_of`). A script error becomes an
error result: an iteration never fails, so the LoopingCall never stops on
its own.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import attrs
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from octtwisted._core import logs
from octtwisted._core.clocks import Clocks
from octtwisted._core.deferreds import when_fired
from octtwisted._core.messages import Result

#: The cannons' logger. (Not a class attribute: there Twisted's Logger
#: would rename itself after the class.)
_LOG = logs.logger(logs.CANNON)

#: Seconds before a cannon tries again to make its Transaction, after the
#: constructor raised.
RETRY_TRANSACTION_AFTER = 1.0

#: Called with the result of every transaction.
ReportResult = Callable[[Result], None]


@attrs.frozen
class CannonSettings:
    """
    What a cannon is given, wherever its transactions run.

    :ivar index: the cannon's number in its run, from 0.
    :ivar turret_name: the name its results carry.
    :ivar make_transaction: creates its transaction (called once, or again
        on a later iteration if it raised).
    :ivar clocks: its time.
    :ivar report: receives every result.
    :ivar started_at: the turret's start of firing, on ``clocks.monotonic``.
    :ivar pacing: seconds; a transaction starts at most once per period.
    :ivar transaction_timeout: seconds ``run`` may take, or None.
    :ivar on_crash: called if the cannon's own machinery fails (a bug);
        None logs it.
    :ivar throttle: called before each transaction; a Deferred it returns
        holds the cannon back until it fires (backpressure, a schedule).
    :ivar request_timers: its results carry the request timers of their
        transactions (the run records requests and the config's
        ``request_timers`` is true; see
        :mod:`octtwisted._core.requesttimers`).
    """

    index: int
    turret_name: str
    make_transaction: Callable[[], Any]
    clocks: Clocks
    report: ReportResult
    started_at: float
    pacing: float = 0.0
    transaction_timeout: float | None = None
    on_crash: Callable[[Failure], None] | None = None
    throttle: Callable[[], Deferred[None] | None] | None = None
    request_timers: bool = False


class Barrel(Protocol):
    """
    Where a cannon's transactions run: the part of a :class:`Cannon` that
    differs between a script of the reactor and a blocking one.
    """

    #: transactions reported
    fired: int

    def fire(self) -> Deferred[None] | None:
        """
        One iteration of the cannon's loop: transactions until one must
        be waited for (its Deferred), or none is (None).
        """

    def stopping(self) -> None:
        """
        The cannon is asked to stop, before its loop does: end the
        iteration under way after the transaction it is in.
        """

    def cancel_in_flight(self, reason: str) -> None:
        """
        The stop timeout: report the transaction in flight as an error
        with ``reason`` and stop waiting for it.
        """

    def ended(self) -> None:
        """
        The cannon's loop has ended, for good.
        """


#: Makes a cannon's barrel, given the cannon (its settings, its loop, its
#: waits).
MakeBarrel = Callable[["Cannon"], Barrel]


class Cannon:
    """
    One virtual user: its transactions, one after another, in a
    ``LoopingCall`` (see the module docstring).

    :param settings: what it is given.
    :param make_barrel: makes the part that runs its transactions.
    """

    # Slots: no dict per cannon (a run may have tens of thousands).
    __slots__ = (
        "settings",
        "index",
        "loop",
        "_finished",
        "_waiting",
        "_barrel",
    )

    def __init__(self, settings: CannonSettings, make_barrel: MakeBarrel) -> None:
        self.settings = settings
        self.index = settings.index
        #: the cannon's loop; its barrel reads ``running`` from it
        self.loop = LoopingCall(self._fire)
        self.loop.clock = settings.clocks.reactor
        self._finished: Deferred[None] | None = None
        self._waiting: Deferred[None] | None = None
        self._barrel = make_barrel(self)

    @property
    def running(self) -> bool:
        return self.loop.running

    @property
    def started(self) -> bool:
        return self._finished is not None

    @property
    def busy(self) -> bool:
        """
        Firing and not waiting (for pacing, its start schedule or
        backpressure): a transaction of it is in flight, or about to start.
        """
        return self._finished is not None and self.loop.running and self._waiting is None

    @property
    def fired(self) -> int:
        """
        Transactions reported by this cannon.
        """
        return self._barrel.fired

    def start(self) -> None:
        """
        Start firing (the first transaction starts now).
        """
        if self._finished is not None:
            raise RuntimeError(f"cannon {self.index} started twice")
        finished = self.loop.start(0, now=True)
        self._finished = finished.addCallbacks(lambda _: None, self._crashed)
        self._finished.addBoth(self._ended)

    def stop(self) -> Deferred[None]:
        """
        Stop firing. The transaction in flight may finish.

        :return: fires when the cannon has ended its last transaction.
        """
        if self._finished is None:
            return succeed(None)
        self._barrel.stopping()
        if self.loop.running:
            self.loop.stop()
        if self._waiting is not None:
            self._waiting.cancel()
        return when_fired(self._finished)

    def cancel_in_flight(self, reason: str) -> None:
        """
        Cancel the transaction in flight (after the stop timeout): it is
        reported with the error ``reason``, and not waited for.
        """
        self._barrel.cancel_in_flight(reason)

    def idle(self, seconds: float) -> Deferred[None]:
        """
        Wait ``seconds`` before the next transaction (cut short by stop).
        """
        return self.hold(deferLater(self.settings.clocks.reactor, seconds))

    def hold(self, wait: Deferred[None]) -> Deferred[None]:
        """
        Wait for ``wait`` before the next transaction (cut short by stop,
        which cancels it): fires with None either way.
        """
        self._waiting = wait
        return wait.addBoth(self._waited)

    def _fire(self) -> Deferred[None] | None:
        return self._barrel.fire()

    def _waited(self, result: object) -> None:
        self._waiting = None
        if isinstance(result, Failure):
            result.trap(CancelledError)

    def _ended(self, _: object) -> None:
        self._barrel.ended()

    def _crashed(self, failure: Failure) -> None:
        on_crash = self.settings.on_crash
        if on_crash is not None:
            on_crash(failure)
        else:
            _LOG.failure(
                "cannon {index} crashed (turret bug)", failure=failure, index=self.index
            )
