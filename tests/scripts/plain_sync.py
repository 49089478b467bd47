"""A plain synchronous class (no imports of Twisted): it blocks in time.sleep.

config "outcome": "ok", "fail" (ZeroDivisionError) or "never" (waits
forever).
"""

import threading
import time


class Transaction:
    def __init__(self, config, context=None):
        self.config = config
        self.context = context or {}
        self.custom_timers = {}

    def run(self):
        began = time.perf_counter()
        outcome = self.config.get("outcome", "ok")
        if outcome == "never":
            threading.Event().wait()
        time.sleep(self.config.get("wait", 0.02))
        self.custom_timers["slept"] = time.perf_counter() - began
        if "user_id" in self.context:
            self.custom_timers["context_user"] = float(self.context["user_id"])
        if outcome == "fail":
            1 / 0
