"""
The conformance kit's failing script: each transaction waits about 20 ms
and raises an exception with a known text.
"""

import time
from typing import Any, Dict, Optional

MESSAGE = "conformance kit: this transaction fails on purpose (status 503)"


class Transaction(object):
    def __init__(self, config: Optional[Dict[str, Any]] = None, context: Optional[Dict[str, Any]] = None) -> None:
        self.custom_timers: Dict[str, float] = {}

    def setup(self) -> None:
        pass

    def run(self) -> None:
        time.sleep(0.02)
        raise RuntimeError(MESSAGE)

    def tear_down(self) -> None:
        pass
