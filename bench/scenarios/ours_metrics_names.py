"""
Ours, scenario metrics: what a big ``/metrics`` answer costs. Each
transaction sets 50 custom timers and counts 200 request names by hand
(``record_request``; times from 1 ms to 2 s, 2 % answered 503, a few with
no answer), then waits ``bench_wait`` seconds (default 0.02) without
blocking: the turret's figures grow as a long run's do, and its reactor
is not saturated.
"""

import random

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted

TIMERS = [f"t{k:02d}" for k in range(50)]
NAMES = [f"GET /endpoint/{k:03d}" for k in range(200)]


def _nothing():
    return None


class Transaction(octtwisted.Transaction):
    def __init__(self, config, context):
        super().__init__(config, context)
        self.wait = float(config.get("bench_wait", 0.02))
        self.rng = random.Random(22)

    def run(self):
        uniform, draw = self.rng.uniform, self.rng.random
        for timer in TIMERS:
            self.custom_timers[timer] = uniform(0.001, 1.5)
        for name in NAMES:
            chance = draw()
            if chance < 0.002:
                self.record_request(name, uniform(0.001, 2.0), error="ConnectionRefusedError")
            else:
                self.record_request(name, uniform(0.001, 2.0), status=503 if chance < 0.02 else 200, size=512)
        return deferLater(reactor, self.wait, _nothing)
