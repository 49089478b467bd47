"""A classic blocking oct-turrets script: time.sleep in a thread."""

import time

import oct_turrets
from oct_turrets.base import BaseTransaction
from oct_turrets.tools import CustomTimer


class Transaction(BaseTransaction):
    def __init__(self, config, context=None):
        super(Transaction, self).__init__(config, context)
        self.which = "fallback" if getattr(oct_turrets, "__octtwisted_fallback__", False) else "real"

    def run(self):
        with CustomTimer(self, "sleep_" + self.which):
            time.sleep(self.config.get("wait", 0.05))
