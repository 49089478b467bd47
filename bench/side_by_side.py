"""
With / without pairs measured side by side (``bench/run.py``, scenarios
``http`` and ``empty``): what an option costs our turret, to within about
1%, on a host whose speed moves by 10 to 40% from one run to the next.

Run one at a time, the same turret's rate moves with the host between two
runs (the rows "one at a time" show it), and a 2% target cannot be read
off it. Side by side, both turrets of a pair run **at the same time on
the same core** (the last one this process may use), while the fake HQ,
nginx and this harness (its scraper too) run on the other cores. Both are
always busy, so the kernel gives each half the core, and over a window
each gets the host's slow and fast spells alike; the ratio of their rates
is the inverse ratio of their CPU per result: the option's cost. One fake
HQ drives both (``hq_sink.py --turrets 2``): one ``start`` order, one
window for both (``harness.run_turrets``).

Each round swaps which turret is started first. A pair's judged figure is
the median of its rounds' ratios. Each scenario also runs the **same
turret twice** side by side ("A/A"): its ratios show the method's own
spread (1.00x within about 1% on this 2-core machine).

On a machine with one core there are no other cores: the pair shares it
with the fake HQ (the report's header says when the pinning was not
possible).
"""

from __future__ import annotations

import itertools
import os
import statistics
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import harness
from harness import SCENARIOS, TurretSpec

#: Rounds of each side-by-side pair in a full run.
ROUNDS = 5

#: What the report's details show of a round.
DETAIL_METRICS = [("ratio", 3), ("rate_with", 0), ("rate_without", 0), ("cores_with", 2), ("cores_without", 2)]

#: The environment that turns the per-request statistics off (bench only).
NO_REQUESTS = {"OCTTWISTED_BENCH_NO_REQUESTS": "1"}


def cores() -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """(the pair's core, the others), or (None, None) with a single core."""
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        return None, None
    return frozenset(mine[-1:]), frozenset(mine[:-1])


def pinning() -> str:
    """Where the pairs run, for the report's header."""
    pair, others = cores()
    if pair is None or others is None:
        return "one core only: the pairs share it with the fake HQ"
    return f"the pairs on core {min(pair)}, the fake HQ, nginx and the harness on core(s) {', '.join(map(str, sorted(others)))}"


@contextmanager
def apart(nginx: harness.Nginx | None) -> Iterator[frozenset[int] | None]:
    """
    While it lasts, this thread (so the fake HQ and the scrapers it
    starts) and nginx keep off the pair's core, which it yields (None with
    a single core); then everything may run anywhere again.
    """
    pair, others = cores()
    if pair is None or others is None:
        yield None
        return
    everything = pair | others
    pids = [] if nginx is None or nginx.process is None else [nginx.process.pid, *nginx.worker_pids()]
    os.sched_setaffinity(0, others)  # this thread only (Linux): its children inherit it
    for pid in pids:
        try:
            os.sched_setaffinity(pid, others)
        except OSError:
            pass
    try:
        yield pair
    finally:
        os.sched_setaffinity(0, everything)
        for pid in pids:
            try:
                os.sched_setaffinity(pid, everything)
            except OSError:
                pass


def pair_run(with_spec: Callable[[frozenset[int] | None], TurretSpec],
             without_spec: Callable[[frozenset[int] | None], TurretSpec],
             warmup: float, window: float, nginx: harness.Nginx | None) -> Callable[[Path], dict[str, Any]]:
    """
    One round of a pair: both turrets at once, the first started swapped
    every round. :return: ``ratio`` (with / without, of the rates at the
    fake HQ), each side's ``rate_with`` / ``rate_without`` and
    ``cores_with`` / ``cores_without``, and the scraper's figures if a
    side is scraped.
    """
    rounds = itertools.count()

    def run(run_dir: Path) -> dict[str, Any]:
        swapped = next(rounds) % 2 == 1
        with apart(nginx) as core:
            specs = [with_spec(core), without_spec(core)]
            if swapped:
                specs.reverse()
            first, second = harness.run_turrets(specs, warmup=warmup, window=window, run_dir=run_dir)
        got_with, got_without = (second, first) if swapped else (first, second)
        out: dict[str, Any] = {
            "ok": bool(got_with.get("ok") and got_without.get("ok")),
            "pinned": core is not None,
            "with_first": not swapped,
        }
        for side, got in (("with", got_with), ("without", got_without)):
            out[f"rate_{side}"] = got.get("rate")
            out[f"cores_{side}"] = got.get("process_cores")
            out[f"errors_{side}"] = got.get("errors")
            for key in ("crashed", "crash_log", "why", "turret_ended", "aborted", "statuses"):
                if got.get(key):
                    out.setdefault(key, got[key])
            for key in ("scrapes", "scrape_failures", "scrape_ms_median", "scrape_ms_max"):
                if key in got:
                    out[key] = got[key]
        if got_with.get("cpu"):
            out["cpu"] = got_with["cpu"]
        if out["ok"] and out["rate_with"] and out["rate_without"]:
            out["ratio"] = out["rate_with"] / out["rate_without"]
        else:
            out["ok"] = False
        return out

    return run


def variants(variant: Any, scenario: str, reps: int, warmup: float, window: float,
             nginx: harness.Nginx | None) -> list[Any]:
    """The side-by-side pairs of ``http`` (fast_http, 50 cannons) or ``empty`` (10 and 100 cannons)."""
    rounds = ROUNDS if reps >= 3 else 1

    def pair(key: str, label: str, make_with: Callable[[frozenset[int] | None], TurretSpec],
             make_without: Callable[[frozenset[int] | None], TurretSpec]) -> Any:
        return variant(key, scenario, "ours", label, pair_run(make_with, make_without, warmup, window, nginx), rounds)

    if scenario == "http":
        assert nginx is not None
        target = {"target_url": nginx.url}

        def fast(**kw: Any) -> Callable[[frozenset[int] | None], TurretSpec]:
            config = {**target, **kw.pop("config", {})}
            return lambda core: TurretSpec("ours", SCENARIOS / "ours_fast_get.py", 50, 1, extra_config=config,
                                           cpus=core, **kw)

        return [
            pair("http/side-metrics", "fast_http, --metrics scraped every 1 s / without", fast(scrape=True), fast()),
            pair("http/side-requests", "fast_http, per-request statistics / off", fast(),
                 fast(turret_env=NO_REQUESTS)),
            pair("http/side-no-request-timers", "fast_http, request_timers false / per-request statistics off",
                 fast(config={"request_timers": False}), fast(turret_env=NO_REQUESTS)),
            pair("http/side-same", "fast_http, the same turret twice (A/A)", fast(), fast()),
        ]
    out = []
    for n in (10, 100):
        def empty(scrape: bool, n: int = n) -> Callable[[frozenset[int] | None], TurretSpec]:
            return lambda core: TurretSpec("ours", SCENARIOS / "ours_empty.py", n, 1, scrape=scrape, cpus=core)

        out.append(pair(f"empty/side-{n}-metrics", f"{n} cannons, --metrics scraped every 1 s / without",
                        empty(True), empty(False)))
        out.append(pair(f"empty/side-{n}-same", f"{n} cannons, the same turret twice (A/A)", empty(False), empty(False)))
    return out


def spread(v: Any) -> str:
    """The lowest and highest of a pair's round ratios."""
    found = [r["ratio"] for r in v.runs if r.get("ok") and r.get("ratio")]
    return f"{min(found):.3f} to {max(found):.3f}" if found else "n/a"


def summary_rows(get: Callable[[str], Any], append: Callable[[list[str]], None],
                 fmt: Callable[..., str], verdict: Callable[[bool | None], str]) -> None:
    """
    The side-by-side rows: each pair's median ratio (judged where the
    option has a target) and its rounds' range, under the A/A row of its
    scenario.
    """
    def row(scenario: str, key: str, what: str, target: float | None) -> None:
        names = ("with", "without") if target is not None else ("turret A", "turret B")
        v = get(key)
        if v is None:
            return
        found = [r["ratio"] for r in v.runs if r.get("ok") and r.get("ratio")]
        median = statistics.median(found) if found else None
        rates = {side: [r[f"rate_{side}"] for r in v.runs if r.get("ok")] for side in ("with", "without")}
        failed = sum(1 for r in v.runs if not r.get("ok"))
        cells = [
            f"{name}: {fmt(statistics.median(values)) if values else 'n/a'}"
            for name, values in zip(names, rates.values())
        ]
        judged = None if target is None or median is None else median >= target
        append([
            scenario,
            f"{what}, side by side on one core: median of {len(found)} rounds' ratios (range {spread(v)})"
            + (f"; {failed} round(s) failed" if failed else ""),
            *cells,
            "n/a" if median is None else f"{median:.3f}x",
            (f">= {target:.2f}x" + verdict(judged)) if target is not None else "",
        ])

    row("Side by side: the method's precision, fast_http", "http/side-same", "the same turret twice (A/A)", None)
    row("--metrics, scraped every 1 s, fast_http", "http/side-metrics", "requests/s, with / without", 0.98)
    row("Per-request statistics, fast_http, 50 cannons", "http/side-requests", "requests/s, with / without", 0.95)
    row("Per-request statistics, request_timers false", "http/side-no-request-timers",
        "requests/s, with / without", 0.95)
    for n in (10, 100):
        row(f"Side by side: the method's precision, empty transaction, {n} cannons", f"empty/side-{n}-same",
            "the same turret twice (A/A)", None)
        row(f"--metrics, scraped every 1 s, empty transaction, {n} cannons", f"empty/side-{n}-metrics",
            "results/s, with / without", 0.98)
