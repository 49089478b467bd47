"""
The figures of one run: what its summary is made of.

:class:`RunAccount` holds the run's statistics (every result it counts),
when it began, when its stop began (and with how many transactions in
flight) and when it ended (on the monotonic clock), the results it discarded
and how many the sink had given up on before it began, so that the run's
dropped count is its own.
"""

from __future__ import annotations

from octtwisted._core.clocks import Clocks
from octtwisted._core.config import TurretConfig
from octtwisted._core.interfaces import ResultSink
from octtwisted._stats.starts import StartFigures
from octtwisted._stats.summary import RunStats, Summary


class RunAccount:
    def __init__(self, clocks: Clocks, sink: ResultSink) -> None:
        self._clocks = clocks
        self._sink = sink
        self.stats = RunStats()
        #: when the run began firing (monotonic); every ``elapsed`` counts from here
        self.began = 0.0
        self._ended: float | None = None
        self._stopping: float | None = None
        #: transactions in flight when the stop began
        self.in_flight_at_stop = 0
        self._dropped_before = 0
        #: results the run did not send (see :mod:`octtwisted._firing.run`)
        self.discarded = 0

    def begin(self) -> None:
        self.began = self._clocks.monotonic()
        self._dropped_before = self._sink.dropped

    def stopping(self) -> None:
        """The stop begins: the firing time ends now."""
        if self._stopping is None:
            self._stopping = self._clocks.monotonic()

    def end(self) -> None:
        if self._ended is None:
            self._ended = self._clocks.monotonic()

    def summary(self, config: TurretConfig, cannons_reached: int, starts: StartFigures | None) -> Summary:
        """
        The run's summary; its ``dropped`` is what the sink gave up on
        since the run began, and what the run discarded.
        """
        ended = self._ended if self._ended is not None else self._clocks.monotonic()
        stopping = self._stopping if self._stopping is not None else ended
        return self.stats.summary(
            duration=ended - self.began,
            stop_wait=ended - stopping,
            in_flight_at_stop=self.in_flight_at_stop,
            cannons=config.cannons,
            cannons_reached=cannons_reached,
            dropped=self._sink.dropped - self._dropped_before + self.discarded,
            starts=starts,
        )
