"""A plain class whose run is async def (awaits deferLater), with a CustomTimer.

config "outcome": "ok", "fail" (KeyError) or "never" (awaits forever).
"""

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from octtwisted import CustomTimer


class Transaction:
    def __init__(self, config, context=None):
        self.config = config
        self.custom_timers = {}

    async def run(self):
        if self.config.get("outcome") == "never":
            await Deferred()
        async with CustomTimer(self, "wait"):
            await deferLater(reactor, self.config.get("wait", 0.02), lambda: None)
        if self.config.get("outcome") == "fail":
            raise KeyError("missing")
