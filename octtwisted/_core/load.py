"""
The load a run makes: the config keys ``arrival_rate`` and ``stages``.

- Neither: the closed model of OCT, ``cannons`` cannons firing back to
  back, brought in over ``rampup``.
- ``arrival_rate`` (starts per second, > 0): the open model; transactions
  start at planned times whatever the response times, ``rampup`` ramps the
  rate from 0, and ``cannons`` is the most transactions in flight.
- ``stages`` (a non-empty list of ``{"duration": s, "target": n}``): the
  load changes linearly within each stage from the previous target to its
  own, then the last target holds. Closed model: the target is a number of
  active cannons (a whole number, at most ``cannons``), the first stage
  starts from 0. Open model: the target is a rate, the first stage starts
  from ``arrival_rate``. ``rampup`` is not used with stages.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs

from octtwisted._core.checker import is_number, show_value


class LoadError(ValueError):
    """
    A bad ``arrival_rate`` or ``stages``; ``str()`` is one line.
    """


@attrs.frozen
class Stage:
    #: seconds the stage lasts
    duration: float
    #: active cannons (closed model) or starts per second (open model) at its end
    target: float


@attrs.frozen
class Load:
    arrival_rate: float | None = None
    stages: tuple[Stage, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def stages_duration(self) -> float:
        """Seconds until the last stage ends (0 without stages)."""
        return sum(stage.duration for stage in self.stages)


def parse_load(raw: Mapping[str, Any], cannons: int, rampup: float) -> Load:
    """
    :raise LoadError: naming the key and what is wrong.
    """
    rate = raw.get("arrival_rate")
    if rate is not None and not (is_number(rate) and rate > 0):
        raise LoadError(f"key 'arrival_rate' must be a number of transactions per second > 0, got {show_value(rate)}")
    arrival_rate = None if rate is None else float(rate)
    stages_raw = raw.get("stages")
    if stages_raw is None:
        return Load(arrival_rate=arrival_rate)
    if not isinstance(stages_raw, list) or not stages_raw:
        raise LoadError(f"key 'stages' must be a non-empty list of {{\"duration\", \"target\"}} objects, got {show_value(stages_raw)}")
    stages = []
    for number, stage in enumerate(stages_raw, 1):
        where = f"stage {number} of 'stages'"
        if not isinstance(stage, dict):
            raise LoadError(f"{where} must be an object with 'duration' and 'target', got {show_value(stage)}")
        for key in ("duration", "target"):
            if key not in stage:
                raise LoadError(f"{where} has no {key!r}")
        duration, target = stage["duration"], stage["target"]
        if not (is_number(duration) and duration > 0):
            raise LoadError(f"{where}: 'duration' must be a number of seconds > 0, got {show_value(duration)}")
        if arrival_rate is not None:
            if not (is_number(target) and target >= 0):
                raise LoadError(f"{where}: 'target' must be a rate >= 0 (transactions per second), got {show_value(target)}")
        else:
            if not (is_number(target) and target >= 0 and float(target).is_integer()):
                raise LoadError(f"{where}: 'target' must be a whole number of cannons >= 0, got {show_value(target)}")
            if target > cannons:
                raise LoadError(f"{where}: 'target' {show_value(target)} is more than 'cannons' ({cannons})")
        unknown = sorted(set(stage) - {"duration", "target"})
        if unknown:
            raise LoadError(f"{where} has unknown keys: {', '.join(map(repr, unknown))}")
        stages.append(Stage(float(duration), float(target)))
    warnings: tuple[str, ...] = ()
    if rampup:
        warnings = (f"'rampup' ({rampup:g}s) is not used with 'stages': the stages set the load",)
    return Load(arrival_rate=arrival_rate, stages=tuple(stages), warnings=warnings)
