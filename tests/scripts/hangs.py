"""A non-blocking script whose run never ends."""

from twisted.internet.defer import Deferred

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        return Deferred()
