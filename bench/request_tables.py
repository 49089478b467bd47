"""
Per-request statistics: the memory of the tables and the time to write a
summary, fed directly (no network, no turret): 10 names x 1,000,000
requests, lognormal times around 20 ms (most between 5 and 80 ms), 1 %
answered 503.

    .venv/bin/python bench/request_tables.py [--names 10] [--requests 1000000]

It prints the requests recorded per second (the table's own cost per
request), the table's bytes (``RequestTable.nbytes``: every dict, key and
count it holds, by ``sys.getsizeof``), and the milliseconds to make the summary's rows and its text and JSON.
The targets: <= 2 MB, < 100 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from octtwisted._stats.summary import RunStats  # noqa: E402
from octtwisted._stats.table import format_table  # noqa: E402


def measure(names: int = 10, requests: int = 1_000_000, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    # a pool of 65,536 times per name, reused: drawing a lognormal per
    # request would measure the generator, not the table
    times = [rng.lognormvariate(-3.9, 0.6) for _ in range(65536 + names)]
    statuses = [503 if rng.random() < 0.01 else 200 for _ in range(65536)]
    labels = [f"GET /endpoint/{i}" for i in range(names)]
    stats = RunStats()
    record = stats.requests.record
    began = time.perf_counter()
    for i in range(requests * names):
        j = i & 65535
        record(labels[i % names], "GET", times[j + i % names], statuses[j], 512)
    recording = time.perf_counter() - began
    stats.requests.take_bucket()  # as a timeline's tick would: everything settled
    began = time.perf_counter()
    summary = stats.summary(duration=60.0, cannons=50, cannons_reached=50)
    text = format_table(summary)
    document = json.dumps(summary.to_dict())
    summary_ms = (time.perf_counter() - began) * 1000
    assert sum(row.requests for row in summary.requests) == requests * names
    return {
        "ok": True,
        "names": names,
        "requests_per_name": requests,
        "record_ns": recording / (requests * names) * 1e9,
        "table_kib": stats.requests.nbytes() / 1024,
        "summary_ms": summary_ms,
        "summary_chars": len(text) + len(document),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=10)
    parser.add_argument("--requests", type=int, default=1_000_000, help="per name")
    args = parser.parse_args()
    result = measure(args.names, args.requests)
    print(f"{args.names} names x {args.requests:,} requests")
    print(f"  record: {result['record_ns']:.0f} ns per request")
    print(f"  table: {result['table_kib']:,.0f} KiB  target <= 2,048 KiB")
    print(f"  summary (rows, text, JSON): {result['summary_ms']:.1f} ms  target < 100 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
