"""
The live status line of a standalone run in a terminal.

When standard output is a TTY, a standalone run shows one line, rewritten
every second, instead of the periodic progress log lines::

    12.0/30 s  1,234.5 tx/s  p95 12.3 ms  errors 3 (0.02%)  50/50 cannons  48 in flight

Once the run stops, it says what the stop waits for
(``stopping: 5 in flight``).

Each write clears the line (``ESC [2K``) and ends with a carriage return,
so the next write, or a log line, starts over it at the first column.
"""

from __future__ import annotations

from typing import Callable, TextIO

from octtwisted._stats.timeline import Tick

_CLEAR = "\x1b[2K"


def status_text(
    tick: Tick, duration: float | None, target: int,
    in_flight: int | None = None, stopping: bool = False,
) -> str:
    """
    The status line's text for one tick; ``in_flight``: the transactions
    in flight now (None: not known); ``stopping``: the stop waits for them.
    """
    elapsed = f"{tick.elapsed:.1f}" + (f"/{duration:g} s" if duration is not None else " s")
    p95 = "-" if tick.p95 is None else f"{tick.p95 * 1000:.1f} ms"
    errors = f"errors {tick.errors:,}"
    if tick.transactions:
        errors += f" ({tick.errors / tick.transactions:.2%})"
    text = (
        f"{elapsed}  {tick.transactions_per_second:,.1f} tx/s  p95 {p95}  {errors}  "
        f"{tick.active}/{target} cannons"
    )
    if in_flight is not None:
        text += f"  {'stopping: ' if stopping else ''}{in_flight:,} in flight"
    if tick.dropped_starts is not None:
        text += f"  {tick.dropped_starts:,} starts dropped"
    return text


class LiveStatus:
    """
    Writes the status line to ``out`` (a terminal) on every timeline tick.
    """

    def __init__(self, out: TextIO, duration: float | None, target: int) -> None:
        self._out = out
        self._duration = duration
        self._target = target
        self._in_flight: Callable[[], int] | None = None
        self._stopping: Callable[[], bool] = lambda: False
        self.shown = False

    def follow(self, in_flight: Callable[[], int], stopping: Callable[[], bool]) -> None:
        """
        The run's transactions in flight now, and whether it is stopping,
        for the next lines.
        """
        self._in_flight, self._stopping = in_flight, stopping

    def update(self, tick: Tick) -> None:
        in_flight = self._in_flight() if self._in_flight is not None else None
        text = status_text(tick, self._duration, self._target, in_flight, self._stopping())
        self._out.write(_CLEAR + text + "\r")
        self._out.flush()
        self.shown = True

    def close(self) -> None:
        """
        Clear the line (the summary comes next).
        """
        if self.shown:
            self._out.write(_CLEAR + "\r")
            self._out.flush()
            self.shown = False
