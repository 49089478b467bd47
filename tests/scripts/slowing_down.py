"""A non-blocking script whose transactions grow slower: the n-th of the
process waits 10 ms + n ms (a system under test that degrades)."""

import itertools

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted

_made = itertools.count()


class Transaction(octtwisted.Transaction):
    def run(self):
        wait = 0.01 + next(_made) * 0.001
        self.custom_timers["wait"] = wait
        return deferLater(reactor, wait, lambda: None)
