"""
A classic blocking script whose cannons are all in a blocking call when
the stop comes: the process's first transaction returns at once (so that
the run has a success), every other one sleeps far longer than any test.

It also leaves a marker in ``sys.modules`` that writes ``interpreter
teardown`` on stderr if the process tears its interpreter down at exit
(module globals cleared): a turret that ends promptly never does.
"""

import os
import sys
import threading
import time
import types

from oct_turrets.base import BaseTransaction


class _TeardownMarker:
    def __del__(self, write=os.write):
        write(2, b"interpreter teardown\n")


if "teardown_marker" not in sys.modules:
    _module = types.ModuleType("teardown_marker")
    _module.marker = _TeardownMarker()
    sys.modules["teardown_marker"] = _module

_first = threading.Lock()


class Transaction(BaseTransaction):
    def run(self):
        if _first.acquire(blocking=False):
            return
        time.sleep(600)
