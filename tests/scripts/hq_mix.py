"""
For the real HQ's end-to-end test: a 5 ms wait timed as ``nap``; one
transaction in seven fails with an error text holding the word by which
the HQ tells status frames from results.
"""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class Transaction(octtwisted.Transaction):
    count = 0

    async def run(self):
        Transaction.count += 1
        async with octtwisted.CustomTimer(self, "nap"):
            await deferLater(reactor, 0.005, lambda: None)
        if Transaction.count % 7 == 0:
            raise RuntimeError("HTTP status 503")
