"""
How a transaction's steps (``setup``, ``run``, ``tear_down``) are called.

A non-blocking script's steps run on the reactor thread and may return a
plain value, a Deferred or a coroutine (``async def``). A blocking script's
steps run in a thread pool, so that ``time.sleep`` or ``requests`` never
stall the reactor.
"""

from __future__ import annotations

import inspect
import threading
from types import CoroutineType
from typing import Any, Callable, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool


class StepCaller(Protocol):
    def call(self, step: Callable[[], Any]) -> Any:
        """
        Call ``step``; return its value, or a Deferred of it. May raise.
        """


class ReactorStepCaller:
    """
    Calls steps on the reactor thread; coroutines become Deferreds.
    """

    def call(self, step: Callable[[], Any]) -> Any:
        result = step()
        if type(result) is CoroutineType:
            return Deferred.fromCoroutine(result)
        return result


class ThreadStepCaller:
    """
    Calls steps in ``pool``; the result comes back as a Deferred.
    """

    def __init__(self, reactor: IReactorThreads, pool: ThreadPool) -> None:
        self._reactor = reactor
        self._pool = pool

    def call(self, step: Callable[[], Any]) -> Deferred[Any]:
        return deferToThreadPool(self._reactor, self._pool, _call_to_completion, step)


def _call_to_completion(step: Callable[[], Any]) -> Any:
    result = step()
    if inspect.iscoroutine(result):
        result.close()
        raise TypeError(
            "a blocking script's step returned a coroutine; "
            "declare the Transaction non-blocking to use async def"
        )
    return result


class DaemonThreadPool(ThreadPool):
    """
    A thread pool whose threads do not keep the process alive: a blocking
    script that never returns must not stop the turret from exiting.
    """

    def threadFactory(self, *args: Any, **kwargs: Any) -> threading.Thread:  # type: ignore[override]
        thread = threading.Thread(*args, **kwargs)
        thread.daemon = True
        return thread


#: Most threads a blocking script gets, whatever the number of cannons.
MAX_THREADS = 1000


class ThreadPoolService(Service):
    """
    Owns the thread pool of a blocking script: one thread per cannon, up to
    :data:`MAX_THREADS`, so N cannons really run N at a time.

    On stop the pool is only joined when no step is still running in it; a
    step that never returns is left behind (its thread is a daemon).
    """

    def __init__(self, size: int) -> None:
        self.pool = DaemonThreadPool(minthreads=0, maxthreads=min(size, MAX_THREADS), name="oct-cannons")

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> None:
        super().stopService()
        if not self.pool.working:
            self.pool.stop()
