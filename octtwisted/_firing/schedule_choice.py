"""
The one place that chooses a run's start schedule from the config:
:func:`schedule_for` (the schedules are described in
:mod:`~octtwisted._firing.schedule`).
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IReactorTime

from octtwisted._core.config import TurretConfig
from octtwisted._core.share import LoadShare
from octtwisted._firing.arrival import ArrivalSchedule
from octtwisted._firing.profile import Profile
from octtwisted._firing.rampup import RampupScheduler
from octtwisted._firing.schedule import BringIn, StartSchedule
from octtwisted._firing.stages import CannonStages


def schedule_for(
    config: TurretConfig,
    clock: IReactorTime,
    bring_in: BringIn,
    on_done: Callable[[], object],
    share: LoadShare | None = None,
) -> StartSchedule:
    """
    The start schedule the config asks for; ``on_done`` is called once
    every cannon has come in. With a ``share`` (of ``config.cannons``),
    the schedule makes only that part of the load (see
    :mod:`~octtwisted._core.share`); None: all of it.
    """
    steps = [(stage.duration, stage.target) for stage in config.stages]
    if config.arrival_rate is not None:
        if steps:
            profile = Profile(steps, initial=config.arrival_rate)
        else:
            profile = Profile.ramp(config.arrival_rate, config.rampup)
        return ArrivalSchedule(clock, profile, config.cannons, bring_in, on_done, share)
    if steps:
        return CannonStages(clock, Profile(steps), config.cannons, bring_in, on_done, share)
    return RampupScheduler(clock, config.cannons, bring_in, config.rampup, on_done=on_done, share=share)
