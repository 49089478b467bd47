"""
Ours, scenario open: each transaction waits ``bench_wait`` seconds without
blocking. ``bench_early`` (a diagnostic) sets how early before its planned
time a start may be made (the turret's EARLY; 0: never early).
"""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted
from octtwisted._firing import arrival


def _nothing():
    return None


class Transaction(octtwisted.Transaction):
    def __init__(self, config, context):
        super().__init__(config, context)
        self.wait = float(config.get("bench_wait", 0.01))
        if "bench_early" in config:
            arrival.EARLY = float(config["bench_early"])

    def run(self):
        return deferLater(reactor, self.wait, _nothing)
