"""
A watchdog that notices when the reactor was blocked, and by what.

A reactor script that blocks (``time.sleep``, ``requests``) stalls every
cannon and the HQ link. The watchdog ticks every ``interval`` seconds and
logs a warning when a tick came late by more than ``threshold``. While the
reactor is blocked, a :class:`StackSampler` thread looks at the reactor
thread's stack and notes the script step it is in, so the warning names
it: ``Transaction.run (script.py line 9)``.
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType
from typing import Callable, Protocol

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from octtwisted._core import logs


def _library_folders() -> tuple[str, ...]:
    import sysconfig

    import octtwisted

    paths = sysconfig.get_paths()
    folders = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib", "scripts") if k in paths}
    folders.add(os.path.dirname(os.path.abspath(octtwisted.__file__)))
    return tuple(os.path.join(f, "") for f in folders)


#: Code in these folders is not a script's (the standard library, installed
#: packages, octtwisted itself).
_LIBRARIES = _library_folders()


def script_frame(frame: FrameType | None) -> FrameType | None:
    """
    The outermost frame outside the libraries (usually the script's step)
    of the stack whose innermost frame is ``frame``, or None.
    """
    found = None
    while frame is not None:
        code = frame.f_code
        if not code.co_filename.startswith("<") and not os.path.abspath(code.co_filename).startswith(_LIBRARIES):
            found = frame
        frame = frame.f_back
    return found


def describe_frame(frame: FrameType | None) -> str:
    """
    ``"Transaction.run (script.py line 9)"``, or ``""`` for None.
    """
    if frame is None:
        return ""
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    return f"{name} ({os.path.basename(code.co_filename)} line {frame.f_lineno})"


def step_in(frame: FrameType | None) -> str:
    """
    The script code the stack whose innermost frame is ``frame`` is in
    (see :func:`script_frame`), described; ``""`` if there is none.
    """
    return describe_frame(script_frame(frame))


class Sampler(Protocol):
    def start(self, ticked: Callable[[], float]) -> None: ...

    def stop(self) -> None: ...

    def take(self) -> str:
        """
        The step the reactor was last seen blocked in (then forgotten).
        """


class StackSampler:
    """
    A daemon thread: every ``interval`` seconds, if the reactor has not
    ticked for more than ``threshold``, look at the step its thread is in.
    A step is noted when two samples in a row find the reactor at the same
    place in it (a process that merely did not get the CPU is not caught
    in whatever it was doing).
    """

    def __init__(self, monotonic: Callable[[], float], interval: float, threshold: float) -> None:
        self._monotonic = monotonic
        self._interval = interval
        self._threshold = threshold
        self._stopped = threading.Event()
        self._seen = ""
        self._ident = 0

    def start(self, ticked: Callable[[], float]) -> None:
        self._ident = threading.get_ident()
        self._ticked = ticked
        thread = threading.Thread(target=self._main, name="oct-watchdog", daemon=True)
        thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def take(self) -> str:
        seen, self._seen = self._seen, ""
        return seen

    def _main(self) -> None:
        last: tuple[int, int] | None = None
        while not self._stopped.wait(self._interval):
            if self._monotonic() - self._ticked() <= self._threshold:
                last = None
                continue
            frame = script_frame(sys._current_frames().get(self._ident))
            place = (id(frame), frame.f_lasti) if frame is not None else None
            if place is not None and place == last:
                self._seen = describe_frame(frame)
            last = place
            del frame


class ReactorWatchdog(Service):
    def __init__(
        self,
        clock: IReactorTime,
        monotonic: Callable[[], float],
        interval: float = 0.1,
        threshold: float = 0.5,
        sampler: Sampler | None = None,
    ) -> None:
        # An instance's logger keeps its namespace (a class attribute would
        # not: Twisted's Logger renames itself after the class it is in).
        self.log = logs.logger(logs.WATCHDOG)
        self._monotonic = monotonic
        self._interval = interval
        self._threshold = threshold
        self._sampler = sampler if sampler is not None else StackSampler(monotonic, interval, threshold)
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._last = 0.0
        #: how many times the reactor was found blocked
        self.stalls = 0
        #: how late the last tick came, seconds (the reactor's lag; read
        #: by ``--metrics``)
        self.lag = 0.0

    def startService(self) -> None:
        super().startService()
        self._last = self._monotonic()
        self._loop.start(self._interval, now=False)
        self._sampler.start(lambda: self._last)

    def stopService(self) -> None:
        super().stopService()
        self._sampler.stop()
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        now = self._monotonic()
        # No tick for ``gap`` seconds: the reactor was blocked for up to that.
        gap = now - self._last
        self._last = now
        self.lag = max(gap - self._interval, 0.0)
        step = self._sampler.take()
        if gap - self._interval > self._threshold:
            self.stalls += 1
            if step:
                why = f" in {step}: a step that runs on the reactor must not block"
            else:
                why = (
                    " (no script step seen: a callback blocked it, or the "
                    "process did not get the CPU)"
                )
            self.log.warn(
                "the reactor was blocked for {blocked:.2f}s{why}; if the script "
                "blocks (time.sleep, requests...), set blocking = True on its "
                'Transaction class (or "blocking": true in the config)',
                blocked=gap,
                why=why,
                step=step,
            )
