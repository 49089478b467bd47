"""
The messages a turret exchanges with its HQ, as plain frozen values.

The wire format (how they become ZeroMQ frames) is :mod:`octtwisted._hq.wire`'s
business; everything else in the turret deals in these classes.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import attrs

from octtwisted._core.requesttimers import merge_timers

#: No timers (a shared, read-only empty mapping).
NO_TIMERS: Mapping[str, float] = MappingProxyType({})

#: The status words of the reference turret, which the HQ shows as they are.
READY = "ready"
RUNNING = "Running"
ABORTED = "Aborted"
KILLED = "Killed"

#: The orders an HQ sends.
STATUS_REQUEST = "status_request"
SET_TRANSACTION_CONTEXT = "set_transaction_context"
START = "start"
STOP = "stop"
KILL = "kill"
COMMANDS = frozenset({STATUS_REQUEST, SET_TRANSACTION_CONTEXT, START, STOP, KILL})


@attrs.frozen
class Order:
    """
    One order from the HQ.

    ``topic`` is ``""`` for a broadcast, else the uuid it was addressed to.
    """

    command: str
    msg: Any = None
    topic: str = ""


@attrs.frozen
class StatusReport:
    """
    A status message: what the HQ shows for this turret.

    It has exactly the six keys the real HQ knows: the HQ 0.4.12 updates
    its turret table with ``Turret.update(**message)``, and any other key
    makes it fail (and stop the test). Counts such as dropped results go to
    the turret's log and summary instead.
    """

    turret: str
    status: str
    uuid: str
    rampup: float
    script: str
    cannons: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "turret": self.turret,
            "status": self.status,
            "uuid": self.uuid,
            # The HQ stores rampup in an integer column: send an int when
            # the value is whole.
            "rampup": int(self.rampup) if float(self.rampup).is_integer() else self.rampup,
            "script": self.script,
            "cannons": self.cannons,
        }


@attrs.frozen
class Result:
    """
    The outcome of one transaction.

    :ivar elapsed: seconds since the turret started firing.
    :ivar epoch: wall-clock time the transaction started (Unix seconds).
    :ivar scriptrun_time: seconds ``run`` took (monotonic clock).
    :ivar error: ``""`` on success, else ``"ExceptionType: message"``.
    :ivar custom_timers: timer name -> seconds: the script's own.
    :ivar request_timers: request name -> seconds: the time of each
        request the transaction made through the turret's clients (see
        :mod:`octtwisted._core.requesttimers`); they join
        ``custom_timers`` on the wire (:meth:`to_dict`), as the HQ
        understands them.
    """

    turret_name: str
    elapsed: float
    epoch: float
    scriptrun_time: float
    error: str = ""
    custom_timers: Mapping[str, float] = attrs.field(factory=dict)
    request_timers: Mapping[str, float] = NO_TIMERS

    def hq_timers(self) -> dict[str, float]:
        """
        The timers as the HQ gets them: the request timers and the
        script's own in one dict (see
        :func:`~octtwisted._core.requesttimers.merge_timers`).
        """
        if self.request_timers:
            return merge_timers(self.request_timers, self.custom_timers)
        return dict(self.custom_timers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "turret_name": self.turret_name,
            # epoch first: the order of the CSV file's columns, which lets
            # the CSV process make most rows by a few bytes.replace calls
            # over a batch of frames (see _stats/csvchild.py).
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "scriptrun_time": self.scriptrun_time,
            "error": self.error,
            # hq_timers, inline (the hot path: one call less per result)
            "custom_timers": (
                dict(self.custom_timers) if not self.request_timers
                else dict(self.request_timers) if not self.custom_timers
                else merge_timers(self.request_timers, self.custom_timers)
            ),
        }
