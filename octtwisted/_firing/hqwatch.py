"""
Noticing that the HQ has gone for good during a run.

ZeroMQ reconnects by itself, so a lost connection is not the end of a run.
:class:`HQLossWatch` starts a timer when the HQ link loses the HQ while the
turret fires; if the HQ is not back within ``timeout`` seconds, it calls
``gone`` (the turret then stops the run as on a ``stop`` order). A timeout
of 0 turns the watch off.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class HQLossWatch:
    """
    :param firing: whether the turret fires now (only then does a loss count).
    :param gone: called once the HQ has been away for ``timeout`` seconds.
    """

    def __init__(
        self,
        clock: IReactorTime,
        timeout: float,
        firing: Callable[[], bool],
        gone: Callable[[], None],
    ) -> None:
        self._clock = clock
        self.timeout = timeout
        self._firing = firing
        self._gone = gone
        self._timer: IDelayedCall | None = None

    def lost(self) -> None:
        """
        The HQ link lost the HQ.
        """
        if self.timeout > 0 and self._timer is None and self._firing():
            self._timer = self._clock.callLater(self.timeout, self._expired)

    def back(self) -> None:
        """
        The HQ link (re)connected.
        """
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._firing():
            self._gone()
