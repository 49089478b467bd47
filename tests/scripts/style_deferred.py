"""Deferred style: run returns a Deferred that fires after config['wait'] s."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        wait = self.config.get("wait", 0.05)
        return octtwisted.timed(self, "waiting", deferLater(reactor, wait, lambda: None))
