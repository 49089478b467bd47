"""A script whose transactions end at once (as fast as the turret goes)."""

import octtwisted


class Transaction(octtwisted.Transaction):
    def run(self):
        return None
