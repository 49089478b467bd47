"""
Load that changes over time: a piecewise-linear profile.

A :class:`Profile` is a list of segments, each going linearly from one value
to another over its duration, then a value held for ever. The value is a
number of active cannons (closed model) or a rate of transaction starts per
second (open model). Everything is computed from the run's start, so timers
that fire late never shift the times that follow.

- :meth:`Profile.value` is the value at a time;
- :meth:`Profile.total` is the integral of the value from 0 (for a rate:
  how many starts are planned by then);
- :meth:`Profile.time_of_total` inverts it: when the ``n``-th start
  (from 0) is planned;
- :meth:`Profile.next_count_change`: when the whole number of active
  cannons next changes.
"""

from __future__ import annotations

import math
from typing import Iterable

import attrs

#: Values within this of a whole number count as that number (float noise).
EPSILON = 1e-9


@attrs.frozen
class Segment:
    """
    From ``begin`` (at ``start`` seconds) to ``end`` over ``duration``
    seconds; ``total_before`` is the profile's integral up to ``start``.
    """

    start: float
    duration: float
    begin: float
    end: float
    total_before: float

    @property
    def stop(self) -> float:
        return self.start + self.duration

    @property
    def slope(self) -> float:
        return (self.end - self.begin) / self.duration

    def value(self, t: float) -> float:
        return self.begin + self.slope * (t - self.start)

    def total(self, t: float) -> float:
        tau = t - self.start
        return self.total_before + self.begin * tau + self.slope * tau * tau / 2


class Profile:
    """
    :param steps: ``(duration, end value)`` for each segment, in order;
        each starts from the previous one's end value (the first from
        ``initial``).
    :param initial: the value at time 0.
    """

    def __init__(self, steps: Iterable[tuple[float, float]], initial: float = 0.0) -> None:
        segments: list[Segment] = []
        start = total = 0.0
        begin = initial
        for duration, end in steps:
            if not duration > 0:
                raise ValueError("a segment's duration must be > 0")
            segment = Segment(start, duration, begin, end, total)
            segments.append(segment)
            total = segment.total(segment.stop)
            start, begin = segment.stop, end
        self.segments = tuple(segments)
        #: when the last segment ends (0 without segments)
        self.end = start
        #: the value held after the last segment
        self.hold = begin
        self._total_at_end = total

    @classmethod
    def ramp(cls, value: float, rampup: float) -> "Profile":
        """
        From 0 to ``value`` over ``rampup`` seconds, then ``value`` (at once
        for a rampup of 0).
        """
        if rampup > 0:
            return cls([(rampup, value)])
        return cls([], initial=value)

    def _segment_at(self, t: float) -> Segment | None:
        for segment in self.segments:
            if t < segment.stop:
                return segment
        return None

    def value(self, t: float) -> float:
        segment = self._segment_at(t)
        return segment.value(t) if segment is not None else self.hold

    def total(self, t: float) -> float:
        segment = self._segment_at(t)
        if segment is not None:
            return segment.total(t)
        return self._total_at_end + self.hold * (t - self.end)

    def time_of_total(self, n: float) -> float | None:
        """
        The first time at which :meth:`total` reaches ``n``, or None if it
        never does.
        """
        if n <= 0:
            return 0.0
        for segment in self.segments:
            reached = segment.total(segment.stop)
            if reached + EPSILON >= n:
                return _solve(segment, n)
        if self.hold <= 0:
            return None
        return self.end + (n - self._total_at_end) / self.hold

    def count(self, t: float) -> int:
        """
        The whole number of active cannons at ``t``: the value, rounded
        down (within EPSILON).
        """
        return max(0, math.floor(self.value(t) + EPSILON))

    def next_count_change(self, t: float) -> float | None:
        """
        The first time after ``t`` at which :meth:`count` differs from its
        value at ``t``, or None if it never changes again.
        """
        now = self.count(t)
        for segment in self.segments:
            if segment.stop <= t:
                continue
            slope = segment.slope
            if slope > 0:
                # count() reaches now + 1 where value + EPSILON >= now + 1
                # (aimed a little past, against rounding).
                crossing = segment.start + (now + 1 - EPSILON / 2 - segment.begin) / slope
            elif slope < 0:
                # count() drops below now once value + EPSILON < now.
                crossing = segment.start + (segment.begin - (now - 2 * EPSILON)) / -slope
            else:
                crossing = math.inf
            if crossing < segment.stop:
                return max(crossing, math.nextafter(t, math.inf))
            if math.floor(segment.end + EPSILON) != now:
                return segment.stop
            t = segment.stop
        return None


def _solve(segment: Segment, n: float) -> float:
    """
    The time in ``segment`` at which the total reaches ``n``.
    """
    c = n - segment.total_before
    if c <= 0:
        return segment.start
    a = segment.slope / 2
    b = segment.begin
    if abs(a) < 1e-15:
        return segment.start + (c / b if b > 0 else segment.duration)
    discriminant = b * b + 4 * a * c
    if discriminant < 0:
        return segment.stop
    # The stable form of the smaller positive root of a t^2 + b t - c = 0.
    tau = 2 * c / (b + math.sqrt(discriminant))
    return segment.start + min(max(tau, 0.0), segment.duration)
