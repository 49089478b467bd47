"""
oct-turrets, scenarios density and rampup: each transaction sleeps
``bench_wait`` seconds (default 2). With ``bench_mark_first`` the first
transaction of each cannon carries the custom timer ``first``.
"""

import time

from oct_turrets.base import BaseTransaction


class Transaction(BaseTransaction):
    def __init__(self, config, context=None):
        super(Transaction, self).__init__(config, context)
        self.wait = float(config.get("bench_wait", 2.0))
        self.mark_first = bool(config.get("bench_mark_first", False))

    def run(self):
        # oct-turrets never resets custom_timers between transactions:
        # drop the mark of the first transaction by hand.
        self.custom_timers.pop("first", None)
        if self.mark_first:
            self.mark_first = False
            self.custom_timers["first"] = 1.0
        time.sleep(self.wait)
