"""
A classic blocking script (threads) that counts its requests by hand: one
GET of config["target_base"] + "/fast" with urllib, then record_request.
"""

import time
import urllib.error
import urllib.request

from oct_turrets.base import BaseTransaction

from octtwisted import record_request


class Transaction(BaseTransaction):
    def run(self):
        url = self.config["target_base"] + "/fast?via=hand"
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
            record_request(self, "hand fast", time.perf_counter() - started,
                           status=response.status, size=len(body))
