"""
Answering the HQ's ``status_request``, coalesced.

The real HQ asks again as soon as it receives anything from a turret, so
answering every request at once would make the two trade messages as fast
as they can. :class:`StatusAnswers` answers at once, unless an answer went
out less than ``interval`` seconds ago; then one answer at the end of that
interval covers every request made meanwhile.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from octtwisted._core.deferreds import cancel_call

#: Least time between two answers to ``status_request``, in seconds.
STATUS_ANSWER_INTERVAL = 0.5


class StatusAnswers:
    """
    :param answer: sends the answer (and decides whether there is one to
        send: in a final state there is none).
    """

    def __init__(
        self,
        clock: IReactorTime,
        answer: Callable[[], None],
        interval: float = STATUS_ANSWER_INTERVAL,
    ) -> None:
        self._clock = clock
        self._answer = answer
        self._interval = interval
        self._last = float("-inf")
        self._due: IDelayedCall | None = None

    def requested(self) -> None:
        """
        A ``status_request`` arrived.
        """
        if self._due is not None:
            return
        wait = self._last + self._interval - self._clock.seconds()
        if wait <= 0:
            self._send()
        else:
            self._due = self._clock.callLater(wait, self._send)

    def _send(self) -> None:
        self._due = None
        self._last = self._clock.seconds()
        self._answer()

    def cancel(self) -> None:
        """
        Drop an answer that is due (the turret is going away).
        """
        cancel_call(self._due)
        self._due = None
