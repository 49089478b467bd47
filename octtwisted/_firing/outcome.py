"""
What a cannon makes of a transaction, wherever it runs: the steps worth
calling (:func:`steps_of`), the custom timers fit to send
(:func:`clean_timers`) and the one way a :class:`Result` is built
(:func:`result_of`). The error text itself is :mod:`.errortext`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable

import attrs

from octtwisted._core.messages import NO_TIMERS, Result
from octtwisted._core.requesttimers import take_request_timers
from octtwisted._firing.cannon import CannonSettings
from octtwisted._firing.errortext import cut_error, describe_error


@attrs.frozen
class TransactionSteps:
    """
    A cannon's transaction and those of its steps worth calling.

    :ivar transaction: the transaction (None before one was made).
    :ivar setup: its bound ``setup``, or None when it has none or it does
        nothing (see :func:`_step_or_none`).
    :ivar tear_down: its bound ``tear_down``, or None likewise.
    """

    transaction: Any
    setup: Callable[[], Any] | None
    tear_down: Callable[[], Any] | None


#: What a cannon has before its first transaction was made.
NO_TRANSACTION = TransactionSteps(None, None, None)


def steps_of(transaction: Any) -> TransactionSteps:
    """
    ``transaction`` and its steps worth calling (a blocking script saves a
    trip to its thread for each one left out).
    """
    return TransactionSteps(
        transaction, _step_or_none(transaction, "setup"), _step_or_none(transaction, "tear_down")
    )


def result_of(
    settings: CannonSettings,
    transaction: Any,
    began: float,
    epoch: float,
    run_time: float,
    error: str,
) -> Result:
    """
    The result of a transaction of the cannon with ``settings``.

    :param transaction: the transaction, whose custom timers are read and
        cleaned (an error text naming those dropped joins ``error``) and
        whose request timers are taken (they need no check) when
        ``settings.request_timers``; None
        for none (a transaction not made, or one reported while its own
        thread may still write them).
    :param began: when it began, on ``settings.clocks.monotonic``.
    :param epoch: when it began, on the wall clock.
    :param run_time: seconds its ``run`` took.
    :param error: its error text, ``""`` for none.
    """
    try:
        timers, timer_error = clean_timers(getattr(transaction, "custom_timers", {}))
    except Exception as e:
        timers, timer_error = {}, "custom_timers: " + describe_error(e)
    if timer_error:
        error = cut_error(f"{error}; {timer_error}" if error else timer_error)
    requests: Mapping[str, float] = NO_TIMERS
    if settings.request_timers:
        # take_request_timers, inline (the hot path)
        try:
            held = transaction._oct_request_timers
            transaction._oct_request_timers = None
        except AttributeError:
            take_request_timers(transaction)  # the first time: it makes the attribute
        else:
            if held is not None:
                requests = held
    return Result(
        turret_name=settings.turret_name,
        elapsed=began - settings.started_at,
        epoch=epoch,
        scriptrun_time=run_time,
        error=error,
        custom_timers=timers,
        request_timers=requests,
    )


def clean_timers(timers: object) -> tuple[dict[str, float], str]:
    """
    Keep the custom timers that are a name and a finite number of seconds.

    :return: the timers to send, and an error text naming those dropped
        (``""`` when none were).
    """
    if type(timers) is dict:
        if not timers:
            return {}, ""
        # The common case when a script keeps timers: names and finite
        # float seconds, kept as they are. ``value - value`` is 0.0 only
        # when finite.
        for name, value in timers.items():
            if type(value) is not float or type(name) is not str or value - value != 0.0:
                break
        else:
            return dict(timers), ""
    elif not isinstance(timers, Mapping):
        return {}, f"custom_timers is a {type(timers).__name__}, not a dict"
    clean: dict[str, float] = {}
    bad: list[str] = []
    for name, value in timers.items():
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            bad.append(str(name))
            continue
        if not math.isfinite(seconds):
            bad.append(str(name))
            continue
        clean[str(name)] = seconds
    if bad:
        return clean, "custom timers that are not numbers of seconds: " + ", ".join(bad)
    return clean, ""


def _do_nothing_steps() -> set[Any]:
    """
    The ``setup`` and ``tear_down`` functions known to do nothing: those of
    the base classes scripts inherit from.
    """
    import sys

    from octtwisted._scripts.compat.oct_turrets.base import BaseTransaction as StandIn
    from octtwisted._scripts.transaction import Transaction

    found = set()
    classes = [Transaction, StandIn]
    real = sys.modules.get("oct_turrets.base")
    if real is not None and hasattr(real, "BaseTransaction"):
        classes.append(real.BaseTransaction)
    for cls in classes:
        for name in ("setup", "tear_down"):
            found.add(cls.__dict__.get(name))
    found.discard(None)
    return found


def _step_or_none(transaction: Any, name: str) -> Callable[[], Any] | None:
    """
    The bound step ``name`` of ``transaction``, or None if it has none or
    it is a base class's step that does nothing.
    """
    step: Callable[[], Any] | None = getattr(transaction, name, None)
    if step is None:
        return None
    if getattr(step, "__func__", None) in _do_nothing_steps():
        return None
    return step
