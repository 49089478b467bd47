"""A non-blocking script: each run waits 3 s (long transactions make a
long stop)."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        return deferLater(reactor, 3.0, lambda: None)
