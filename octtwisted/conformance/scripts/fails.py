"""
The conformance kit's failing script: each transaction waits about 20 ms
and raises an exception with a known text.
"""

import time

MESSAGE = "conformance kit: this transaction fails on purpose (status 503)"


class Transaction(object):
    def __init__(self, config=None, context=None):
        self.custom_timers = {}

    def setup(self):
        pass

    def run(self):
        time.sleep(0.02)
        raise RuntimeError(MESSAGE)

    def tear_down(self):
        pass
