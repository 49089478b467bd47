"""
Custom timer values a script got wrong (:class:`TimerFaults`): what the
timers cannot record as they are is counted per timer, said once in the
log, and shown in the summary, never passed off as a time.

* A negative value (a wall clock that jumped back, a subtraction the wrong
  way round), NaN or an infinity is **invalid**: it is not recorded into
  the timer's distribution at all (no 1 us, no one hour), only counted,
  by kind: :data:`INVALID_KINDS`.
* A finite value above one hour (:data:`HIGHEST_SECONDS`) is recorded as
  one hour, the histograms' limit, and counted as :data:`OVER_ONE_HOUR`:
  it is in the figures (a transaction that long did happen), at a value
  lower than the real one.

``RunStats.record`` checks each value with one chained comparison,
``0.0 <= seconds <= HIGHEST_SECONDS`` (False for NaN too); only a value
that fails it reaches :meth:`TimerFaults.note`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from octtwisted._core import logs
from octtwisted._stats.histogram import HIGHEST_US, Timer

#: Largest value (seconds) a timer records as it is: one hour.
HIGHEST_SECONDS = HIGHEST_US / 1_000_000.0

#: The kinds of values not recorded at all, in the order they are shown.
INVALID_KINDS = ("negative", "nan", "infinite")

#: The kind of a finite value above one hour: recorded as one hour.
OVER_ONE_HOUR = "over_one_hour"

#: Every kind :class:`TimerFaults` counts.
FAULT_KINDS = INVALID_KINDS + (OVER_ONE_HOUR,)

#: How the summary text names each kind.
KIND_LABELS = {"negative": "negative", "nan": "NaN", "infinite": "infinite",
               OVER_ONE_HOUR: "above one hour"}


def fault_kind(seconds: float) -> str | None:
    """
    What is wrong with a timer value: one of :data:`FAULT_KINDS`, or None
    for a value recorded as it is (``0 <= seconds <= HIGHEST_SECONDS``).
    """
    if math.isnan(seconds):
        return "nan"
    if math.isinf(seconds):
        return "infinite"
    if seconds < 0:
        return "negative"
    if seconds > HIGHEST_SECONDS:
        return OVER_ONE_HOUR
    return None


def add_faults(into: dict[str, dict[str, int]], faults: Mapping[str, Mapping[str, int]]) -> None:
    """Add ``faults`` (timer name -> kind -> count) into ``into``."""
    for name, kinds in faults.items():
        counts = into.setdefault(name, {})
        for kind, count in kinds.items():
            counts[kind] = counts.get(kind, 0) + count


def invalid_only(faults: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """
    The invalid values of ``faults`` (timer name -> kind -> count): the
    timers that have some, each with its invalid kinds, in
    :data:`INVALID_KINDS` order, sorted by name.
    """
    found = {}
    for name in sorted(faults):
        kinds = {kind: faults[name][kind] for kind in INVALID_KINDS if faults[name].get(kind)}
        if kinds:
            found[name] = kinds
    return found


def over_one_hour(faults: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Timer name -> how many of its values were recorded as one hour, sorted by name."""
    return {
        name: faults[name][OVER_ONE_HOUR] for name in sorted(faults)
        if faults[name].get(OVER_ONE_HOUR)
    }


class TimerFaults:
    """
    The custom timer values of a run that a timer could not record as they
    are, counted per timer and kind (see the module's docstring).

    The first value of each kind for each timer is logged as a warning,
    naming the timer and the value; later ones are only counted (the
    summary gives the count). With parts (``--processes``), what was
    counted since the last part travels in it (:meth:`take_part`), and
    the parent adds it (:meth:`add_part`) without logging again: the
    worker did.

    :ivar counts: timer name -> kind -> count, over the run.
    """

    __slots__ = ("counts", "_part")

    log = logs.logger(logs.TURRET)

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self._part: dict[str, dict[str, int]] = {}

    def note(self, name: str, seconds: float, timer: Timer) -> None:
        """
        Deal with a value of timer ``name`` that failed the quick check:
        count it (and log it, the first of its kind), and record it into
        ``timer`` as one hour when it is finite and above one hour.
        """
        kind = fault_kind(seconds)
        if kind is None:  # not reached from RunStats.record; kept safe
            timer.record(seconds)
            return
        if kind == OVER_ONE_HOUR:
            timer.record(seconds)
        counts = self.counts.setdefault(name, {})
        first = kind not in counts
        counts[kind] = counts.get(kind, 0) + 1
        part = self._part.setdefault(name, {})
        part[kind] = part.get(kind, 0) + 1
        if first:
            self._warn(name, seconds, kind)

    def _warn(self, name: str, seconds: float, kind: str) -> None:
        if kind == OVER_ONE_HOUR:
            what = "is above one hour: it is recorded as one hour"
        else:
            what = f"is {KIND_LABELS[kind]}: it is not recorded into the timer's figures"
        self.log.warn(
            "Custom timer {timer!r} got the value {value!r} seconds, which {what}. Further "
            "such values of this timer are counted, not logged: the summary gives the count.",
            timer=name[:80], value=seconds, what=what,
        )

    def take_part(self) -> dict[str, dict[str, int]]:
        """What was counted since the last call (timer name -> kind -> count)."""
        part, self._part = self._part, {}
        return part

    def add_part(self, faults: Mapping[str, Mapping[str, int]]) -> None:
        """Count another process's faults (see :meth:`take_part`)."""
        add_faults(self.counts, faults)

    def to_dict(self) -> dict[str, Any]:
        """The counts, as a JSON-ready dict (sorted by name, then kind order)."""
        return {
            name: {kind: self.counts[name][kind] for kind in FAULT_KINDS
                   if kind in self.counts[name]}
            for name in sorted(self.counts)
        }
