"""oct-turrets, scenario empty: a transaction that does nothing."""

from oct_turrets.base import BaseTransaction


class Transaction(BaseTransaction):
    def run(self):
        pass
