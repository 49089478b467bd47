"""
Small Deferred helpers used across the layers: "fire this when that one
fires, pass the result on".
"""

from __future__ import annotations

from typing import Callable, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall

T = TypeVar("T")


def on_fired(source: Deferred[T], action: Callable[[], object]) -> Deferred[T]:
    """
    Call ``action()`` when ``source`` fires, with a result or a failure;
    the result passes on untouched to ``source``'s next callbacks.

    :return: ``source``.
    """

    def act(result: T) -> T:
        action()
        return result

    return source.addBoth(act)


def when_fired(source: Deferred[T]) -> Deferred[None]:
    """
    A new Deferred that fires with None when ``source`` fires, with a
    result or a failure. ``source``'s result passes on untouched, so any
    number of waiters can watch one Deferred without taking its result
    away from its owner.
    """
    fired: Deferred[None] = Deferred()
    on_fired(source, lambda: fired.callback(None))
    return fired


def cancel_call(call: IDelayedCall | None) -> None:
    """
    Cancel a delayed call if there is one and it is still pending.
    """
    if call is not None and call.active():
        call.cancel()
