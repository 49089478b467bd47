"""A classic oct-turrets script whose run always raises."""

from oct_turrets.base import BaseTransaction


class Transaction(BaseTransaction):
    def run(self):
        raise ValueError("classic failure")
