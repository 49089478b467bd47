"""An empty non-blocking transaction: measures the turret's own cost."""

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        pass
