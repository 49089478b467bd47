"""
Ours, scenario accuracy: one cannon in ``bench_precise_every`` (the
cannons made 0th, 51st, 102nd, ...) waits exactly 50 ms per transaction
and tags its results with the custom timer ``fifty``; every other cannon
waits 2 s (background load). Cannons are told apart by a class counter.
"""

import itertools

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted

_made = itertools.count()


def _nothing():
    return None


class Transaction(octtwisted.Transaction):
    def __init__(self, config, context):
        super().__init__(config, context)
        index = next(_made)
        every = int(config.get("bench_precise_every", 51))
        self.precise = index % every == 0 and index // every < int(config.get("bench_precise", 20))
        self.wait = 0.05 if self.precise else 2.0

    def run(self):
        if self.precise:
            self.custom_timers["fifty"] = 0.05
        return deferLater(reactor, self.wait, _nothing)
