"""A script whose run keeps the reactor's core busy for 20 ms (no sleep)."""

import time

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass
