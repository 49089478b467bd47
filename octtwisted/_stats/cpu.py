"""
The turret's own CPU while it fires: is the turret the bottleneck?

A turret whose process uses nearly all of its core measures itself: its
latencies and rates describe the turret, not the target. Every
:data:`INTERVAL` seconds of a run, :class:`CPUSampler` reads the CPU
seconds each of the turret's processes has used (its reader: this process
with :func:`own_cpu`; with ``--processes``, the main process and each
worker, :func:`processes_cpu`) and turns the difference into a share of
one core per process. It keeps:

* the busiest process's share per interval (the report's chart), and
  each interval's length;
* the peak: the largest share one process had over one interval (the
  summary's ``cpu_peak``);

and logs one warning per run when a process stays above :data:`LIMIT` of
its core for :data:`SUSTAINED` seconds (as Locust does, once).

Time is injected: the sampler takes an ``IReactorTime`` for its ticks and
for the intervals' lengths, and a reader function for the CPU seconds.
"""

from __future__ import annotations

import os
from array import array
from typing import Any, Callable, Mapping, Sequence

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from octtwisted._core import logs

#: Seconds between two samples.
INTERVAL = 1.0

#: The share of one core above which a process is saturated.
LIMIT = 0.9

#: Seconds a process must stay above :data:`LIMIT` before the warning.
SUSTAINED = 10.0

#: Most samples a run keeps: past that, they are merged two by two (the
#: larger share kept), as the timeline's points are.
MAX_SAMPLES = 3600

#: Reads the CPU seconds (user + system) each process of the turret has
#: used so far: pid -> seconds. A process that cannot be read is left out.
CPUReader = Callable[[], Mapping[int, float]]


def own_cpu() -> dict[int, float]:
    """
    This process's CPU seconds (:func:`os.times`).
    """
    times = os.times()
    return {os.getpid(): times.user + times.system}


def proc_cpu(pid: int) -> float | None:
    """
    The CPU seconds of process ``pid``, from ``/proc/<pid>/stat`` (utime +
    stime), or None if it cannot be read (gone, or no ``/proc``).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: split after it.
    fields = text[text.rfind(b")") + 2:].split()
    try:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError):
        return None


def processes_cpu(pids: Callable[[], Sequence[int | None]]) -> CPUReader:
    """
    A reader of this process's CPU seconds and those of the processes
    ``pids()`` names (the ``--processes`` workers, read from ``/proc``).
    """

    def read() -> dict[int, float]:
        seconds = own_cpu()
        for pid in pids():
            if pid is not None:
                used = proc_cpu(pid)
                if used is not None:
                    seconds[pid] = used
        return seconds

    return read


class CPUSampler:
    """
    :param clock: ticks every ``interval`` seconds, and measures them.
    :param read: the CPU seconds of each of the turret's processes.
    """

    def __init__(
        self,
        clock: IReactorTime,
        read: CPUReader,
        *,
        interval: float = INTERVAL,
        limit: float = LIMIT,
        sustained: float = SUSTAINED,
        log: Logger | None = None,
    ) -> None:
        self._clock = clock
        self._read = read
        self._interval = interval
        self._limit = limit
        self._sustained = sustained
        self.log = log if log is not None else logs.logger(logs.WATCHDOG)
        self._loop = LoopingCall(self.sample)
        self._loop.clock = clock
        self._began = 0.0
        self._last_time = 0.0
        self._last: Mapping[int, float] = {}
        self._busy_since: dict[int, float] = {}
        #: seconds since the start at the end of each interval
        self.end = array("d")
        #: each interval's busiest process: its share of one core
        self.busiest = array("d")
        #: the largest share of one core a process had over an interval
        self.peak: float | None = None
        #: the warning was logged (once per run)
        self.warned = False

    def start(self) -> None:
        self._began = self._last_time = self._clock.seconds()
        self._last = self._read()
        self._loop.start(self._interval, now=False)

    def stop(self) -> None:
        """
        The run ended: stop sampling (the last, partial interval is not
        kept: too short to mean much).
        """
        if self._loop.running:
            self._loop.stop()

    def sample(self) -> None:
        now = self._clock.seconds()
        seconds = now - self._last_time
        current = self._read()
        if seconds <= 0:
            return
        shares = {
            pid: max(0.0, used - self._last[pid]) / seconds
            for pid, used in current.items()
            if pid in self._last
        }
        self._last, self._last_time = current, now
        if not shares:
            return
        busiest = max(shares.values())
        self.end.append(now - self._began)
        self.busiest.append(busiest)
        self.peak = busiest if self.peak is None else max(self.peak, busiest)
        if len(self.end) >= MAX_SAMPLES:
            n = len(self.end) // 2 * 2
            self.end = array("d", self.end[1:n:2]) + self.end[n:]
            self.busiest = array(
                "d", map(max, self.busiest[0:n:2], self.busiest[1:n:2])
            ) + self.busiest[n:]
        for pid, share in shares.items():
            if share <= self._limit:
                self._busy_since.pop(pid, None)
                continue
            since = self._busy_since.setdefault(pid, now - seconds)
            if not self.warned and now - since >= self._sustained:
                self.warned = True
                self.log.warn(
                    "the turret is saturated: process {pid} used more than {limit:.0%} of "
                    "a core for {seconds:.0f}s ({share:.0%} in the last {interval:g}s); "
                    "its response times and rates now describe the turret, not the "
                    "target: use fewer cannons or more processes (--processes)",
                    pid=pid, limit=self._limit, seconds=now - since, share=share,
                    interval=seconds,
                )

    def to_dict(self) -> dict[str, Any]:
        """
        The samples as JSON-ready lists: ``end`` (seconds since the start)
        and ``busiest`` (share of one core), and the ``peak``.
        """
        return {"end": list(self.end), "busiest": list(self.busiest), "peak": self.peak}
