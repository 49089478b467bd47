"""A script that wrongly declares itself non-blocking and blocks the reactor."""

import time

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        time.sleep(self.config.get("block", 2.0))
