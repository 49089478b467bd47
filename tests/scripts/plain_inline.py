"""A plain class whose run is an inlineCallbacks generator method."""

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater


class Transaction:
    def __init__(self, config, context=None):
        self.config = config
        self.custom_timers = {}

    @defer.inlineCallbacks
    def run(self):
        yield deferLater(reactor, self.config.get("wait", 0.02), lambda: None)
        if self.config.get("outcome") == "fail":
            raise RuntimeError("inline failed")
