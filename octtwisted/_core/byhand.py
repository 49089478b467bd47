"""
A request a script counts by hand (``record_request``): made with another
client than the turret's, described once, checked once, and handed down
from the script's call to the run's request table.
"""

from __future__ import annotations

import math
from typing import Any

import attrs


def _name(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"a request's name must be a non-empty str, got {value!r}")


def _seconds(instance: Any, attribute: Any, value: float) -> None:
    if not 0.0 <= value < math.inf:  # NaN too
        raise ValueError(
            f"a request's time must be a finite number of seconds >= 0, got {value!r}"
        )


@attrs.frozen
class RequestByHand:
    """
    One request counted by hand.

    :ivar name: its name (the row of the summary).
    :ivar seconds: how long it took: a measured time (>= 0, finite); any
        other raises ``ValueError`` when the object is made.
    :ivar method: its HTTP method.
    :ivar status: its response's status code, None without a response.
    :ivar size: its response body's bytes, None if not known.
    :ivar error: why it got no response: a short text or the exception.
    """

    name: str = attrs.field(validator=_name)
    seconds: float = attrs.field(converter=float, validator=_seconds)
    method: str = "GET"
    status: int | None = None
    size: int | None = None
    error: str | BaseException | None = None
