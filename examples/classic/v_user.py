"""
A classic oct-turrets script, unchanged: blocking calls (time.sleep,
requests) are fine, because the turret runs classic scripts in a thread
pool. It runs whether or not the oct-turrets package is installed.
"""

import time

from oct_turrets.base import BaseTransaction
from oct_turrets.tools import CustomTimer


class Transaction(BaseTransaction):
    def __init__(self, config, context=None):
        super(Transaction, self).__init__(config, context)

    def setup(self):
        pass

    def run(self):
        with CustomTimer(self, "think"):
            time.sleep(0.1)
        url = self.config.get("target_url")
        if url:
            import requests  # only when a target is configured

            with CustomTimer(self, "get"):
                requests.get(url, timeout=10).raise_for_status()

    def tear_down(self):
        pass
