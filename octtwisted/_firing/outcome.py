"""
What a cannon makes of a transaction's outcome besides its error text
(:mod:`.errortext`): the custom timers fit to send (:func:`clean_timers`),
and which steps need calling at all (:func:`_step_or_none`). Shared by
:mod:`.cannon` and the threaded cannons.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping


def clean_timers(timers: object) -> tuple[dict[str, float], str]:
    """
    Keep the custom timers that are a name and a finite number of seconds.

    :return: the timers to send, and an error text naming those dropped
        (``""`` when none were).
    """
    if not timers and type(timers) is dict:
        return {}, ""
    if not isinstance(timers, Mapping):
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
