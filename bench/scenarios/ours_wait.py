"""
Ours, scenarios density and rampup: each transaction waits ``bench_wait``
seconds (default 2) without blocking. With ``bench_mark_first`` the first
transaction of each cannon carries the custom timer ``first``.

``bench_gc_off`` (a diagnostic, not a fair setting) turns Python's cyclic
garbage collector off in the turret process when the first cannon is made.
"""

import gc

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
        if config.get("bench_gc_off") and gc.isenabled():
            gc.disable()

    def run(self):
        if self.mark_first:
            self.mark_first = False
            self.custom_timers["first"] = 1.0
        return deferLater(reactor, self.wait, _nothing)
