"""
Stand-in for ``oct_turrets.tools``: the timer context manager.
"""

from __future__ import annotations

import time
from typing import Any


class CustomTimer:
    """
    ``with CustomTimer(self, "login"):`` stores the block's duration, in
    seconds, as ``self.custom_timers["login"]``.
    """

    def __init__(self, transaction: Any, name: str) -> None:
        if getattr(transaction, "custom_timers", None) is None:
            transaction.custom_timers = {}
        self.transaction = transaction
        self.name = name
        self.start = 0.0

    def __enter__(self) -> "CustomTimer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.transaction.custom_timers[self.name] = time.perf_counter() - self.start


ActionTimer = CustomTimer
