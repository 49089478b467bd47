"""A non-blocking script: each run waits 10 ms with deferLater."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        self.custom_timers["wait"] = 0.01
        return deferLater(reactor, 0.01, lambda: None)
