"""
Ours, scenario plain: a plain Twisted script (no octtwisted.Transaction,
no blocking attribute), the style the OCT docs show: ``run`` returns a
Deferred that fires after ``bench_wait`` seconds. With ``bench_tag`` each
result carries that custom timer (so the fake HQ picks its run times).
"""

from twisted.internet import reactor
from twisted.internet.task import deferLater


def _nothing():
    return None


class Transaction(object):
    def __init__(self, config, context=None):
        self.config = config
        self.custom_timers = {}
        self.wait = float(config.get("bench_wait", 2.0))
        self.tag = config.get("bench_tag")

    def run(self):
        if self.tag:
            self.custom_timers[self.tag] = self.wait
        return deferLater(reactor, self.wait, _nothing)
