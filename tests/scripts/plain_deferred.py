"""A plain Twisted script (no octtwisted.Transaction): run returns a Deferred.

config "outcome": "ok" (fires after "wait" s), "fail" (fails with
ValueError: bad value after "wait" s) or "never" (never fires).
"""

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater


def _fail():
    raise ValueError("bad value")


class Transaction(object):
    def __init__(self, config, context=None):
        self.custom_timers = {}
        self.wait = config.get("wait", 0.02)
        self.outcome = config.get("outcome", "ok")

    def run(self):
        if self.outcome == "never":
            return defer.Deferred()
        self.custom_timers["planned"] = self.wait
        return deferLater(reactor, self.wait, _fail if self.outcome == "fail" else lambda: None)
