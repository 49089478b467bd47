"""
What the garbage collector does while the turret fires.

A full collection scans every object; with thousands of cannons, each
waiting on its own timer and Deferred, those objects reach the oldest
generation and Python's automatic full collections cost up to 15% of the
rate (20,000 cannons: 85% of the scheduled rate, 100% without them). So,
for a run, :class:`CalmGC` turns automatic full collections off and makes
one every ``interval`` seconds instead (young collections go on as usual),
and once every cannon fires it freezes their objects out of the
collector's sight. Everything is restored when the run ends.

The policy is injected: the process edge gives the turret a
:class:`CalmGC`, tests give it :class:`NoGCPolicy` (a test must not change
the test process's collector).
"""

from __future__ import annotations

import gc
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

#: Seconds between two full collections while firing.
FULL_GC_INTERVAL = 60.0

#: The third gc threshold that keeps Python from making its own full
#: collections.
NO_AUTOMATIC_FULL_GC = 1_000_000_000


class GCPolicy(Protocol):
    def run_started(self) -> None:
        """The run began firing."""

    def all_cannons_in(self) -> None:
        """Every cannon of the run fires: their objects live until its end."""

    def run_ended(self) -> None:
        """The run's cannons have stopped: restore the collector."""


class NoGCPolicy:
    """
    Leaves the garbage collector alone.
    """

    def run_started(self) -> None:
        pass

    def all_cannons_in(self) -> None:
        pass

    def run_ended(self) -> None:
        pass


class CalmGC:
    """
    The policy of the module docstring.

    :param clock: schedules the full collections.
    :param collector: the ``gc`` module (tests give a fake).
    """

    def __init__(
        self, clock: IReactorTime, interval: float = FULL_GC_INTERVAL, collector: Any = gc
    ) -> None:
        self._gc = collector
        self._clock = clock
        self._interval = interval
        self._saved: tuple[int, int, int] | None = None
        self._frozen = False
        self._collections: LoopingCall | None = None

    def run_started(self) -> None:
        if self._saved is None:
            self._saved = self._gc.get_threshold()
        young, middle, _ = self._saved
        self._gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_GC)
        if self._collections is None:
            self._collections = LoopingCall(self._gc.collect)
            self._collections.clock = self._clock
            self._collections.start(self._interval, now=False)

    def all_cannons_in(self) -> None:
        self._gc.freeze()
        self._frozen = True

    def run_ended(self) -> None:
        if self._frozen:
            self._gc.unfreeze()
            self._frozen = False
        if self._collections is not None:
            if self._collections.running:
                self._collections.stop()
            self._collections = None
        if self._saved is not None:
            self._gc.set_threshold(*self._saved)
            self._saved = None
