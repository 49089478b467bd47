"""async def style, with custom timers timed by `async with` (twice: they add up)."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class Transaction(octtwisted.Transaction):
    async def setup(self):
        await deferLater(reactor, 0.01, lambda: None)  # not timed

    async def run(self):
        wait = self.config.get("wait", 0.05)
        for _ in range(2):
            async with octtwisted.CustomTimer(self, "half"):
                await deferLater(reactor, wait / 2, lambda: None)
        self.custom_timers["context_user"] = float(self.context.get("user_id", -1))
