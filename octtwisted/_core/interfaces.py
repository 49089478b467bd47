"""
What the turret needs from the side that talks to the HQ.

The turret core takes orders from an :class:`OrderSource` and hands status
and results to a :class:`ResultSink`. :mod:`octtwisted._hq.link` implements
both over ZeroMQ; :mod:`octtwisted.testing` has in-memory fakes, and
standalone runs use a sink that keeps nothing but the counts.
"""

from __future__ import annotations

from typing import Callable, Protocol

from twisted.internet.defer import Deferred

from octtwisted._core.messages import Order, Result, StatusReport

OrderHandler = Callable[[Order], None]


class OrderSource(Protocol):
    def listen(self, handler: OrderHandler) -> None:
        """
        Call ``handler`` with every well-formed order addressed to this
        turret (broadcast or to its uuid), from now on.
        """


class ResultSink(Protocol):
    @property
    def dropped(self) -> int:
        """
        Results that could not be delivered and were given up on, since
        the process started.
        """

    def send_status(self, status: StatusReport) -> None:
        """
        Send a status message, in order with the results. A transport may
        drop a status that would be stale by the time it is delivered (for
        instance while the HQ is away), but not a final one.
        """

    def on_connected(self, listener: Callable[[], None]) -> None:
        """
        Call ``listener`` each time the transport (re)connects to the HQ.
        """

    def on_disconnected(self, listener: Callable[[], None]) -> None:
        """
        Call ``listener`` each time the transport loses the HQ during a run.
        """

    def run_started(self) -> None:
        """
        The turret started firing.
        """

    def run_ended(self) -> None:
        """
        The turret stopped firing (its cannons have all stopped).
        """

    def send_result(self, result: Result) -> None:
        """
        Send, or queue, one result.
        """

    def pending(self) -> int:
        """
        How many results are queued, not yet handed to the transport.
        """

    def wait_for_room(self, below: int) -> Deferred[None]:
        """
        Fires once fewer than ``below`` results are queued.
        """

    def discard_queued(self) -> int:
        """
        Give up on every result queued and not yet handed to the transport
        (they belong to a run whose HQ has gone); count them as dropped.

        :return: how many.
        """

    def flush(self, timeout: float) -> Deferred[None]:
        """
        Fires when every queued result has been handed to the transport, or
        after ``timeout`` seconds (what is left is then counted as dropped).
        """
