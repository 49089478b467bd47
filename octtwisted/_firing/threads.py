"""
The threads of a blocking script's cannons, and the way their results
come back to the reactor.

A :class:`CannonThread` runs what its cannon hands it, in order. A
:class:`Mailbox` carries finished bursts to the reactor: the first batch
posted asks the reactor to wake up (``callFromThread``), and that one
wake-up delivers every batch posted until it runs.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Any, Callable, Protocol

from octtwisted._core.messages import Result


#: (The reactor thread.) Takes a burst's results and outcome.
Landed = Callable[[list[Result], object], None]


class Worker(Protocol):
    """
    Runs work, one piece after another, in one thread of its own.
    """

    def start(self) -> str:
        """
        Start the thread if it is not running yet: ``""`` once it runs, or
        why the system would not start it.
        """
        ...

    def submit(self, work: Callable[[], None]) -> None: ...

    def close(self) -> None: ...


class CannonThread:
    """
    A daemon thread that runs what it is given, in order, until closed.

    The system may refuse a thread (``ulimit -u``, ``threads-max``, memory
    for its stack): then :meth:`start` says why, and tries again when
    called again.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._name = name
        self._started = False
        self.start()

    def start(self) -> str:
        if self._started:
            return ""
        thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError as e:
            # CPython's words when pthread_create fails: "can't start new thread".
            return str(e) or "can't start new thread"
        self._started = True
        return ""

    def submit(self, work: Callable[[], None]) -> None:
        self._queue.put(work)

    def close(self) -> None:
        self._queue.put(None)

    def _main(self) -> None:
        get = self._queue.get
        while True:
            work = get()
            if work is None:
                return
            work()


class Reactorish(Protocol):
    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None: ...


class Mailbox:
    """
    Bursts' results, from any thread to the reactor: one reactor wake-up
    delivers every batch posted since the last one.
    """

    def __init__(self, reactor: Reactorish) -> None:
        self._reactor = reactor
        self._items: deque[tuple[Landed, list[Result], object]] = deque()
        self._waking = False

    def post(self, landed: Landed, results: list[Result], outcome: object) -> None:
        """
        (Any thread.) Hand a burst's results and outcome to ``landed``, on
        the reactor.
        """
        self._items.append((landed, results, outcome))
        if not self._waking:
            self._waking = True
            self._reactor.callFromThread(self._deliver)

    def _deliver(self) -> None:
        # Clear the flag first: a batch posted from now on wakes us again.
        self._waking = False
        items = self._items
        while items:
            landed, results, outcome = items.popleft()
            landed(results, outcome)
