"""
A transaction's request timers: the time of each request it made, by
name, for the HQ (the config's ``request_timers``), kept apart from the
script's own ``custom_timers``.

The HTTP clients add to them as each request ends
(:func:`add_request_timer`); the cannon takes them with the transaction's
result (:func:`take_request_timers`), which carries them as
``Result.request_timers``. Only on the wire (``Result.to_dict``) do they
join the custom timers, as OCT's HQ understands them: one timer per
request name. Kept apart, they need no check (the clients write only
names and finite seconds) and the summary's custom-timer table never
mistakes a script's own timer for a request's, whatever its name.

They live in the transaction's attribute ``_oct_request_timers`` (None
or a dict; a transaction that takes no attributes, as a class with
``__slots__``, gets none). An attribute read by its literal name is the
cheapest look-up there is; the two places on the hot path (the fast
client's hook, the cannon's result) spell it out so, as these functions do.
"""

from __future__ import annotations

from typing import Any


def add_request_timer(owner: Any, name: str, seconds: float) -> None:
    """
    Add ``seconds`` to ``owner``'s request timer ``name`` (a name used
    twice in one transaction sums); nothing when ``owner`` takes no
    attributes (None, a class with ``__slots__``).
    """
    timers = getattr(owner, "_oct_request_timers", None)
    if timers is None:
        try:
            owner._oct_request_timers = {name: seconds}
        except (AttributeError, TypeError):
            pass
    else:
        timers[name] = timers.get(name, 0.0) + seconds


def take_request_timers(owner: Any) -> dict[str, float] | None:
    """
    ``owner``'s request timers since the last take (None when it has
    none); it starts its next transaction without any.
    """
    try:
        timers: dict[str, float] | None = owner._oct_request_timers
    except AttributeError:
        timers = None
    try:
        owner._oct_request_timers = None
    except (AttributeError, TypeError):
        pass
    return timers


def merge_timers(
    request_timers: dict[str, float] | Any, custom_timers: dict[str, float] | Any
) -> dict[str, float]:
    """
    One dict of timers as the HQ gets them: the request timers, then the
    script's own; a script's timer named like a request adds to it.
    """
    merged = dict(request_timers)
    for name, seconds in custom_timers.items():
        merged[name] = merged.get(name, 0.0) + seconds
    return merged
