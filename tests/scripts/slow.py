"""A non-blocking script: each run waits 0.5 s with deferLater."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        return deferLater(reactor, 0.5, lambda: None)
