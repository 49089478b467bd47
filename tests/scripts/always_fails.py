"""A script whose every transaction fails."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class Transaction(octtwisted.Transaction):
    async def run(self):
        await deferLater(reactor, 0.005, lambda: None)
        raise ConnectionRefusedError("target is down")
