"""A classic blocking oct-turrets script."""

import time

from oct_turrets.base import BaseTransaction
from oct_turrets.tools import CustomTimer


class Transaction(BaseTransaction):
    def __init__(self, config, context=None):
        super().__init__(config, context)

    def run(self):
        with CustomTimer(self, "sleep"):
            time.sleep(0.02)
