"""
The live status line of a standalone run in a terminal.

When standard output is a TTY, a standalone run shows one line, rewritten
every second, instead of the periodic progress log lines::

    12.0/30 s  1,234.5 tx/s  p95 12.3 ms  errors 3 (0.02%)  50/50 cannons

Each write clears the line (``ESC [2K``) and ends with a carriage return,
so the next write, or a log line, starts over it at the first column.
"""

from __future__ import annotations

from typing import TextIO

from octtwisted._stats.timeline import Tick

_CLEAR = "\x1b[2K"


def status_text(tick: Tick, duration: float | None, target: int) -> str:
    """
    The status line's text for one tick.
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
        self.shown = False

    def update(self, tick: Tick) -> None:
        self._out.write(_CLEAR + status_text(tick, self._duration, self._target) + "\r")
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
