"""
oct-turrets, scenario accuracy: one cannon in ``bench_precise_every`` (the
cannons made 0th, 51st, 102nd, ...) sleeps exactly 50 ms per transaction
and tags its results with the custom timer ``fifty``; every other cannon
sleeps 2 s (background load). Cannons are told apart by a class counter
(``next()`` on an itertools.count is atomic under the GIL).
"""

import itertools
import time

from oct_turrets.base import BaseTransaction

_made = itertools.count()


class Transaction(BaseTransaction):
    def __init__(self, config, context=None):
        super(Transaction, self).__init__(config, context)
        index = next(_made)
        every = int(config.get("bench_precise_every", 51))
        self.precise = index % every == 0 and index // every < int(config.get("bench_precise", 20))
        self.wait = 0.05 if self.precise else 2.0

    def run(self):
        if self.precise:
            self.custom_timers["fifty"] = 0.05
        time.sleep(self.wait)
