"""
Ours, scenarios density and rampup: each transaction waits ``bench_wait``
seconds (default 2) without blocking. With ``bench_mark_first`` the first
transaction of each cannon carries the custom timer ``first``.
"""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


def _nothing():
    return None


class Transaction(octtwisted.Transaction):
    def __init__(self, config, context):
        super().__init__(config, context)
        self.wait = float(config.get("bench_wait", 2.0))
        self.mark_first = bool(config.get("bench_mark_first", False))

    def run(self):
        if self.mark_first:
            self.mark_first = False
            self.custom_timers["first"] = 1.0
        return deferLater(reactor, self.wait, _nothing)
