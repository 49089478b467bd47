"""
Ours, scenario cores: a CPU-bound transaction, about 0.5 ms of pure Python
(no I/O, no waiting) per transaction.

The work is a fixed loop of ``ITERATIONS`` integer operations, calibrated
once on the bench machine (Python 3.11, 2 cores; 0.5 ms measured by
``timeit``); the config's ``bench_iterations`` overrides it. A fixed count,
not a time budget: the same work per transaction whatever the load, so the
results/s of one process against two are a measure of the cores used.
"""

import octtwisted

#: About 0.5 ms on the bench machine (about 41 ns per turn of the loop).
ITERATIONS = 12_000


def burn(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i % 7
    return x


class Transaction(octtwisted.Transaction):
    def setup(self):
        self.iterations = int(self.config.get("bench_iterations", ITERATIONS))

    def run(self):
        burn(self.iterations)
