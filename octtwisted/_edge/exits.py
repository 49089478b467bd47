"""
How the process ends: the exit status chosen by the turret, the cleanups
that must run however it ends, and a second signal while stopping.

twistd exits 0 after a reactor stop, and re-raises a signal that stopped
it (SIGTERM: 143). :class:`ProcessExit` lets the turret choose the status
instead (``kill``: 0, an abort: 70, the end of a standalone run: 0, 1,
74 for a file not written whole, or 99, see
:mod:`octtwisted._edge.standalone`);
the process ends with it right after the reactor's shutdown, once every
service has stopped and the logs are flushed.

When twistd ends the process itself (status 0), the end is still prompt:
once twistd's own cleanups and the at-exit handlers have run, the process
ends with ``os._exit`` instead of tearing the interpreter down (see
:func:`end_after_atexit`). That teardown, with thousands of cannon threads
still alive (a blocking script's daemon threads, some in a step that never
returns) and the objects of thousands of cannons, took seconds after the
summary, for nothing.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from types import FrameType
from typing import Any, Callable

from twisted.internet import error
from twisted.internet.interfaces import IReactorCore

#: The signals that stop the turret.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ExitCleanups:
    """
    What must be done however the process ends (say, remove an extracted
    ``--tar`` package): at a normal interpreter exit, and before an
    immediate exit with ``os._exit``. Each runs once.
    """

    def __init__(self) -> None:
        self._pending: list[Callable[[], object]] = []
        atexit.register(self.run)

    def add(self, cleanup: Callable[[], object]) -> None:
        self._pending.append(cleanup)

    def run(self) -> None:
        pending, self._pending = self._pending, []
        for cleanup in reversed(pending):
            try:
                cleanup()
            except Exception as e:  # a cleanup must not stop the others
                sys.stderr.write(f"oct-turret: cleanup failed: {type(e).__name__}: {e}\n")


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe
            pass


def end_after_atexit(code: int = 0) -> None:
    """
    Arrange for the interpreter's exit to end with ``code`` as soon as every
    at-exit handler has run, skipping the rest of the interpreter's
    teardown (it joins no thread: the daemon threads end with the process).

    Call it when nothing is left to do but exit normally. The handler it
    registers runs first (at-exit handlers run last registered first), runs
    the others itself (``atexit._run_exitfuncs``: the ``--tar`` cleanup,
    :mod:`logging`'s flush...), flushes the standard streams and calls
    ``os._exit``. An uncaught exception before the exit (traceback printed,
    ``sys.last_value`` set) makes the status 1, as Python would. Should a
    handler have been registered after this one (it has run already, and
    would run again), Python is left to end as usual.
    """

    def at_exit() -> None:
        if atexit._ncallbacks() != registered:
            return
        atexit.unregister(at_exit)
        atexit._run_exitfuncs()
        _flush_standard_streams()
        failed = getattr(sys, "last_value", None) is not None
        os._exit(1 if failed and code == 0 else code)

    atexit.register(at_exit)
    registered = atexit._ncallbacks()


def exit_now(code: int, cleanups: ExitCleanups) -> None:
    """
    Flush, run the cleanups and end the process with ``code`` at once.
    """
    _flush_standard_streams()
    cleanups.run()
    os._exit(code)


class ProcessExit:
    """
    Ends the process with a chosen exit status (call it with the status).

    When no status was chosen, twistd ends the process as usual (0, or the
    signal that stopped it). A status of 0 after a signal ends the process
    with 0 rather than re-raising the signal; any other chosen status ends
    it with that status.

    Once shutting down, a second SIGINT or SIGTERM ends the process at once
    (with 128 + the signal's number), after the cleanups.

    :param at_exit: called with 0 when twistd is to end the process with
        status 0: by default :func:`end_after_atexit`, so that the end is
        prompt whatever threads are still alive.
    """

    def __init__(
        self,
        reactor: IReactorCore,
        cleanups: ExitCleanups,
        at_exit: Callable[[int], None] = end_after_atexit,
    ) -> None:
        self._reactor = reactor
        self._cleanups = cleanups
        self._at_exit = at_exit
        self.code: int | None = None
        #: the signal that stopped the process, if one did
        self.signalled: int | None = None
        reactor.addSystemEventTrigger("after", "startup", self._watch_signals)
        reactor.addSystemEventTrigger("before", "shutdown", self._second_signal_exits)
        reactor.addSystemEventTrigger("after", "shutdown", self._after_shutdown)

    def __call__(self, code: int) -> None:
        self.code = code
        try:
            self._reactor.stop()
        except error.ReactorNotRunning:
            pass

    def _watch_signals(self) -> None:
        """
        Note which signal stops the process, then let the reactor's own
        handler do what it does.
        """
        for number in STOP_SIGNALS:
            handler = signal.getsignal(number)
            if not callable(handler):
                continue

            def noting(n: int, frame: FrameType | None, handler: Any = handler) -> None:
                self.signalled = n
                handler(n, frame)

            _install(number, noting)

    def _second_signal_exits(self) -> None:
        def now(number: int, frame: FrameType | None) -> None:
            sys.stderr.write(f"oct-turret: signal {number} while stopping: exiting now\n")
            exit_now(128 + number, self._cleanups)

        for number in STOP_SIGNALS:
            _install(number, now)

    def _after_shutdown(self) -> None:
        if self.code is None and self.signalled is not None:
            return  # twistd re-raises the signal: the process ends at once
        if self.code is None or (self.code == 0 and self.signalled is None):
            # twistd ends the process (status 0) after its own cleanups
            # (the pid file, its log); then no interpreter teardown.
            self._at_exit(0)
            return
        exit_now(self.code, self._cleanups)


def _install(number: int, handler: Callable[[int, FrameType | None], None]) -> None:
    try:
        signal.signal(number, handler)
    except ValueError:  # not the main thread (tests)
        pass
