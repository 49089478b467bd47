"""A script that catches the cancellation of its transaction and retries
(``except Exception`` around a request): the first run's transactions
take 4 s and, cancelled, 4 s more; later ones (``fast`` in the context)
take 0.1 s."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class Transaction(octtwisted.Transaction):
    async def run(self):
        if self.context.get("fast"):
            await deferLater(reactor, 0.1, lambda: None)
            return
        try:
            await deferLater(reactor, 4, lambda: None)
        except Exception:
            await deferLater(reactor, 4, lambda: None)  # the retry
