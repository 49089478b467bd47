"""A non-blocking script (50 ms waits) with 20 custom timers (``t00`` to ``t19``): a heavier scrape."""

from twisted.internet import reactor, task

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        for i in range(20):
            self.custom_timers[f"t{i:02d}"] = 0.001 * (i + 1)
        return task.deferLater(reactor, 0.05, lambda: None)
