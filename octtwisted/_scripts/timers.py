"""
Custom timers: named, timed parts of a transaction, sent with its result.

``CustomTimer(transaction, name)`` times a block, as in the reference
turret, with ``with`` or ``async with``; :func:`timed` times a Deferred
until it fires. Durations come from a monotonic clock, in seconds.

When the same name is timed more than once in one transaction, the
durations **add up**: ``custom_timers[name]`` is the total time spent in
that part. (The reference turret's ``oct_turrets.tools.CustomTimer``, kept
as it was for classic scripts, keeps only the last one.)
"""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


def _add(transaction: Any, name: str, seconds: float) -> None:
    timers = getattr(transaction, "custom_timers", None)
    if timers is None:
        timers = transaction.custom_timers = {}
    timers[name] = timers.get(name, 0.0) + seconds


class CustomTimer:
    """
    Times a block into ``transaction.custom_timers[name]``::

        with CustomTimer(self, "parse"):
            ...
        async with CustomTimer(self, "login"):
            await self.http.post(...)

    The time is recorded whether the block ends normally or raises.
    """

    def __init__(
        self,
        transaction: Any,
        name: str,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.transaction = transaction
        self.name = name
        self._clock = clock
        self._began = 0.0

    def __enter__(self) -> "CustomTimer":
        self._began = self._clock()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _add(self.transaction, self.name, self._clock() - self._began)

    async def __aenter__(self) -> "CustomTimer":
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)


def timed(
    transaction: Any,
    name: str,
    deferred: Deferred[T],
    clock: Callable[[], float] = time.perf_counter,
) -> Deferred[T]:
    """
    Time ``deferred`` from now until it fires (with a result or a failure)
    into ``transaction.custom_timers[name]``; returns it, result unchanged::

        response = yield timed(self, "home", self.http.get(url))
    """
    began = clock()

    def record(result: T) -> T:
        _add(transaction, name, clock() - began)
        return result

    return deferred.addBoth(record)
