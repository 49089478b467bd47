"""Ours, scenario empty: a transaction that does nothing."""

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        pass
