"""
The conformance kit's default script: each transaction waits about 20 ms
and succeeds. Its custom timer is named after the transaction context's
``conformance_timer`` (``wait`` without it).
"""

import time


class Transaction(object):
    def __init__(self, config=None, context=None):
        self.custom_timers = {}
        self.timer = (context or {}).get("conformance_timer", "wait")

    def setup(self):
        pass

    def run(self):
        start = time.time()
        time.sleep(0.02)
        self.custom_timers[self.timer] = time.time() - start

    def tear_down(self):
        pass
