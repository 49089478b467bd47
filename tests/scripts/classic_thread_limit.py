"""
A classic blocking script, loaded into a process that may start at most
``thread_limit`` threads (config key, default 200): past it,
``threading.Thread.start`` fails as CPython's does when the system refuses
a thread (``RuntimeError: can't start new thread``). As root, ``ulimit -u``
is not enforced, so the exhaustion tests inject the failure here, in the
real turret process, before any cannon is made.
"""

import threading
import time

from oct_turrets.base import BaseTransaction

_start = threading.Thread.start
LIMIT = 200


def _limited_start(self, *args, **kwargs):
    if threading.active_count() >= LIMIT:
        raise RuntimeError("can't start new thread")
    return _start(self, *args, **kwargs)


threading.Thread.start = _limited_start


class Transaction(BaseTransaction):
    def run(self):
        time.sleep(0.02)
