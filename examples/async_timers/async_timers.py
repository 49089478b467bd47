"""
An ``async def`` script with custom timers: a pretend login, then two page
views, each timed on its own. It needs no server: the waits stand in for
network calls (use ``self.http`` for real ones).
"""

from __future__ import annotations

import random

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


async def pause(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


class Transaction(octtwisted.Transaction):
    async def setup(self) -> None:
        # Not timed: only run() counts in scriptrun_time.
        self.user = f"user-{random.randrange(1000)}"

    async def run(self) -> None:
        async with octtwisted.CustomTimer(self, "login"):
            await pause(random.uniform(0.02, 0.04))
        for _ in range(2):
            # Timed twice under one name: the two durations add up.
            async with octtwisted.CustomTimer(self, "page_view"):
                await pause(random.uniform(0.005, 0.015))
