"""
A script whose custom timer is sometimes wrong: every third transaction
times "clock" as a wall clock that jumped back would (-0.5 s); the others
time it right (5 ms). "wait" is always right.
"""

import itertools

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted

RUNS = itertools.count(1)


class Transaction(octtwisted.Transaction):
    def run(self):
        self.custom_timers["wait"] = 0.01
        self.custom_timers["clock"] = -0.5 if next(RUNS) % 3 == 0 else 0.005
        return deferLater(reactor, 0.01, lambda: None)
