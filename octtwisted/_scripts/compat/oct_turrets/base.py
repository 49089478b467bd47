"""
Stand-in for ``oct_turrets.base``: the base class of classic test scripts.
"""

from __future__ import annotations

from typing import Any


class BaseTransaction:
    """
    A classic, blocking transaction: the turret runs its steps in a thread
    pool. ``setup`` and ``tear_down`` are not timed; ``run`` is.
    """

    def __init__(self, config: Any = None, context: Any = None) -> None:
        self.config = config if config is not None else {}
        self.context = context if context is not None else {}
        self.custom_timers: dict[str, float] = {}

    def setup(self) -> None:
        pass

    def run(self) -> None:
        pass

    def tear_down(self) -> None:
        pass
