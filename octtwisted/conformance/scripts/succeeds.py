"""
The conformance kit's default script: each transaction waits about 20 ms
and succeeds. Its custom timer is named after the transaction context's
``conformance_timer`` (``wait`` without it).
"""

import time
from typing import Any, Dict, Optional


class Transaction(object):
    def __init__(self, config: Optional[Dict[str, Any]] = None, context: Optional[Dict[str, Any]] = None) -> None:
        self.custom_timers: Dict[str, float] = {}
        self.timer = (context or {}).get("conformance_timer", "wait")

    def setup(self) -> None:
        pass

    def run(self) -> None:
        start = time.time()
        time.sleep(0.02)
        self.custom_timers[self.timer] = time.time() - start

    def tear_down(self) -> None:
        pass
