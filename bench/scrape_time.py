"""
What one ``/metrics`` scrape costs the reactor (``docs/metrics.rst``).

    .venv/bin/python bench/scrape_time.py               # 50 custom timers
    .venv/bin/python bench/scrape_time.py --timers 200 --full
    .venv/bin/python bench/scrape_time.py --requests 200   # and 200 request names

A turret's figures as a run leaves them: 20,000 transactions, each with
``--timers`` custom timers (values from 1 ms to 2 s, seeded), plus the
transaction timer; with ``--requests N``, each transaction also makes one
request of each of N request names (the per-request statistics: times
from 1 ms to 2 s, 2 % answered 503, a few without response). Each scrape renders the metrics as the endpoint does
(``TemplateRenderer``; ``--full``: prometheus_client's ``generate_latest``
of the whole collector, as before the template) after 200 more
transactions, so no scrape finds the figures of the one before. The
values those transactions staged are settled into the HDR histograms
first, untimed (timed apart: ``settle``): that is the recording's cost,
deferred to whichever reader comes first (a scrape, the progress line,
the end of the run), not the scrape's. Prints the median and the worst
of ``--scrapes`` scrapes (ms), the answer's size and its series; the
time of the collector's reading alone (``read``) too. Runs with ``PYTHONPATH`` at another checkout to measure
its code (``--full`` is then the only renderer it may have).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from octtwisted._edge import metrics_web  # noqa: E402
from octtwisted._edge.metrics import TurretCollector, TurretProbes  # noqa: E402
from octtwisted._firing.lifecycle import State  # noqa: E402
from octtwisted._stats.summary import RunStats  # noqa: E402


class Result:
    def __init__(self, scriptrun_time: float, custom_timers: dict[str, float]) -> None:
        self.scriptrun_time = scriptrun_time
        self.error = ""
        self.custom_timers = custom_timers


class Run:
    def __init__(self) -> None:
        self.stats = RunStats()
        self.starts = None

    def active_cannons(self) -> int:
        return 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timers", type=int, default=50, help="custom timers (default 50)")
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--full", action="store_true", help="prometheus_client renders it all")
    parser.add_argument("--requests", type=int, default=0, help="request names (default 0)")
    args = parser.parse_args()

    rng = random.Random(22)
    names = [f"t{k:03d}" for k in range(args.timers)]
    requests = [f"GET /endpoint/{k:03d}" for k in range(args.requests)]
    run = Run()
    record = run.stats.requests.record

    def fire(n: int) -> None:
        for _ in range(n):
            run.stats.record(Result(
                rng.uniform(0.002, 2.0), {name: rng.uniform(0.001, 1.5) for name in names}
            ))
            for request in requests:
                draw = rng.random()
                if draw < 0.002:
                    record(request, "GET", rng.uniform(0.001, 2.0), 0, -1, "ConnectionRefusedError")
                else:
                    record(request, "GET", rng.uniform(0.001, 2.0), 503 if draw < 0.02 else 200, 512)

    fire(args.transactions)
    collector = TurretCollector(
        name="bench", uuid="u",
        probes=TurretProbes(state=lambda: State.RUNNING, reactor_lag=lambda: 0.0),
    )
    collector.run_made(run)  # type: ignore[arg-type]
    template: Any = getattr(metrics_web, "TemplateRenderer", None)
    if args.full or template is None:
        render, how = metrics_web.registry_renderer(collector), "generate_latest"
    else:
        render, how = template(collector), "TemplateRenderer"
    body = render()
    times, reads, settles = [], [], []

    def settle() -> None:
        began = time.perf_counter()
        for held in run.stats.timers().values():
            for timer in held:
                timer.settle()
        for entry in run.stats.requests.names.values():
            entry.settle()
        settles.append((time.perf_counter() - began) * 1000)

    for _ in range(args.scrapes):
        fire(200)
        settle()
        began = time.perf_counter()
        body = render()
        times.append((time.perf_counter() - began) * 1000)
        if hasattr(collector, "read"):
            fire(1)
            settle()
            began = time.perf_counter()
            collector.read()
            reads.append((time.perf_counter() - began) * 1000)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(
        f"{how}, {args.timers} custom timers, {args.requests} request names: "
        f"{statistics.median(times):.1f} ms median, "
        f"{max(times):.1f} ms worst of {args.scrapes} scrapes; {len(body):,} bytes, "
        f"{series:,} series"
        + (f"; read alone {statistics.median(reads):.1f} ms" if reads else "")
        + f"; settle apart {statistics.median(settles):.1f} ms"
    )


if __name__ == "__main__":
    main()
