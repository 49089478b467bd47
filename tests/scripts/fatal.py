"""A script that raises a BaseException (not an Exception): the turret aborts."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

import octtwisted


class EndOfTheWorld(BaseException):
    pass


class Transaction(octtwisted.Transaction):
    def setup(self):
        return deferLater(reactor, 0.2, lambda: None)

    def run(self):
        raise EndOfTheWorld("this is not an error a cannon can survive")
