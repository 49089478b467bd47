"""
Memory of a run's over-time data (the timeline behind ``--report`` and the
live line): a simulated hour at 10,000 transactions/s.

    .venv/bin/python bench/timeline_memory.py [--seconds 3600] [--rate 10000] [--open]

Results go through the real RunStats and Timeline on a fake clock (no
network, no turret): ``rate`` results per simulated second, lognormal
``scriptrun_time`` around 20 ms, two custom timers, 1 % errors. With
``--open`` (the open model), each result is also a planned start through
the real StartStats, started with a lognormal lag around 0.3 ms, and one
planned start in a hundred more is dropped. It prints
the timeline's points and column bytes, the memory tracemalloc sees
allocated by the timeline and its buckets at the end and at the peak, and
the process's RSS growth.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet.task import Clock  # noqa: E402

from octtwisted._core.messages import Result  # noqa: E402
from octtwisted._stats.starts import StartStats  # noqa: E402
from octtwisted._stats.summary import RunStats  # noqa: E402
from octtwisted._stats.timeline import Timeline  # noqa: E402


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bucket_bytes(stats: RunStats, starts: StartStats | None) -> int:
    """
    Bytes of the values staged for the open bucket (dicts, keys, counts).
    """
    total = 0
    timers = [stats._interval, *stats._custom_timers.values()]
    if starts is not None:
        timers.append(starts._interval_lag)
    for timer in timers:
        for counts in (timer.staged, timer.bucket or {}):
            total += sys.getsizeof(counts) + sum(
                sys.getsizeof(k) + sys.getsizeof(v) for k, v in counts.items()
            )
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--trace", action="store_true",
                        help="also trace allocations with tracemalloc (about 10x slower)")
    parser.add_argument("--open", action="store_true",
                        help="the open model: starts, dropped starts and start lags too")
    args = parser.parse_args()
    rng = random.Random(13)
    pool = [
        Result(
            turret_name="t", elapsed=0.0, epoch=0.0,
            scriptrun_time=rng.lognormvariate(-3.9, 0.5),
            error="HTTP 503" if rng.random() < 0.01 else "",
            custom_timers={"login": rng.lognormvariate(-4.6, 0.4),
                           "search": rng.lognormvariate(-4.2, 0.6)},
        )
        for _ in range(20_011)
    ]
    lags = [rng.lognormvariate(-8.1, 0.6) for _ in range(10_007)]
    clock = Clock()
    stats = RunStats()
    before_rss = rss_mib()
    if args.trace:
        tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    largest_bucket = 0
    starts = StartStats() if args.open else None
    timeline = Timeline(clock, stats, lambda: 500, starts=starts)
    timeline.start()
    began = time.monotonic()
    record = stats.record
    index = 0
    size = len(pool)
    peak_points = 0
    lag_index = 0
    for second in range(args.seconds):
        if starts is not None:
            for _ in range(args.rate // 100):
                starts.plan()
                starts.drop()
        for _ in range(args.rate):
            if starts is not None:
                starts.plan()
                starts.start(lags[lag_index])
                lag_index = (lag_index + 1) % len(lags)
            record(pool[index])
            index += 1
            if index == size:
                index = 0
        if second % 5 == 4:
            stats.take_interval(5.0)  # the progress line's reads, as in a run
            if starts is not None:
                starts.take_interval()
        largest_bucket = max(largest_bucket, bucket_bytes(stats, starts))
        clock.advance(1.0)
        peak_points = max(peak_points, len(timeline))
    stats.summary(duration=float(args.seconds), cannons=500, cannons_reached=500,
                  starts=starts.figures() if starts is not None else None)
    timeline.stop()
    data = timeline.to_dict()
    current, peak = tracemalloc.get_traced_memory()
    if args.trace:
        tracemalloc.stop()
    model = ", open model" if starts is not None else ""
    print(f"simulated {args.seconds} s at {args.rate:,} tx/s{model} = {args.seconds * args.rate:,} "
          f"results in {time.monotonic() - began:.0f} s")
    print(f"timeline: {len(timeline)} points (at most {peak_points}), bucket width "
          f"{timeline.width:g} s, columns {timeline.nbytes() / 1024:.0f} KiB")
    print(f"largest open bucket (staged values of one second): {largest_bucket / 1024:.0f} KiB")
    if args.trace:
        print(f"traced memory (RunStats histograms + timeline + report data): "
              f"now {(current - base) / 2**20:.2f} MiB, peak {(peak - base) / 2**20:.2f} MiB")
    print(f"report data points: {len(data['end'])}; RSS growth {rss_mib() - before_rss:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
