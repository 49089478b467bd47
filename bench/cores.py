"""
Scenario ``cores`` of ``make bench``: what ``--processes`` buys and costs
(ours only; see docs/processes.rst). Every run is a turret against the fake
HQ (``bench/hq_sink.py``, its own process), as in the other scenarios.

Variants:

``cores/cpu-1``, ``cores/cpu-2``
    a CPU-bound script (``ours_cpu.py``: about 0.5 ms of pure Python per
    transaction, no I/O), 50 cannons, ``--processes 1`` and ``2``: the
    results/s at the HQ, their ratio and the scaling efficiency
    rate(2) / (2 x rate(1)).
``cores/bare-1``, ``cores/bare-2``
    the machine's own ceiling for the rows above: 1 and 2 plain Python
    processes calling the script's ``burn`` in a loop (no turret, no HQ):
    calls/s. On a shared or virtual machine two cores need not give twice
    one.
``cores/empty-1``, ``cores/empty-2``
    empty transactions, 10 cannons per process (10 with ``--processes 1``,
    20 with ``2``): results/s at the HQ, and what limits it: the cores used
    in the window by the turret (its main process and its workers, summed),
    by the fake HQ, and by processes that are not the benchmark's.
``cores/empty-none``, ``cores/fast-none``, ``cores/fast-1``
    ``--processes 1`` against no option: empty transactions, 10 cannons
    (``cores/empty-1`` is the other side), and ``fast_http`` GETs, 50
    cannons, against the bench's nginx (the ``http`` scenario's script).
``cores/density-100000``, ``cores/density-20000``
    100,000 (the moonshot) and 20,000 cannons waiting 2 s per transaction
    (``deferLater``), rampup 10 s, ``--processes 2``: results/s against the
    N/2 per s scheduled, and the memory of the main process and its
    workers: RSS summed (a page shared by two processes counts twice) and
    PSS summed (from ``/proc/PID/smaps_rollup``: a shared page is divided
    among the processes that map it), the highest in the window, per
    cannon.
``cores/memory-1``, ``cores/memory-2``, ``cores/memory-2-spawned``
    1,000 cannons per process (2 s waits), ``--processes 1`` and ``2``: the
    RSS, PSS and USS summed over the turret's processes in the window
    (after the rampup: the cannons wait most of the time); what the second
    process adds is memory-2 minus memory-1, with the workers forked from
    the zygote (the default: the sum counts the zygote too) and spawned
    (``OCT_TURRET_WORKERS=spawn``).

``bench/fork_memory.py`` (not run by ``make bench``) measures what a
sleeping child forked from an already-imported parent costs, against a
fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import harness
from harness import SCENARIOS

#: The moonshot's and the fallback's cannons (``--processes 2``).
DENSITY = (100_000, 20_000)
#: The rampup of the density rows (fixed: also in ``--quick``).
DENSITY_RAMPUP = 10.0


def _run(script: str, cannons: int, processes: int | None, rampup: float, warmup: float, window: float,
         extra: dict[str, Any] | None = None, sample_tree: bool = False) -> Callable[[Path], dict[str, Any]]:
    option = ("--processes", str(processes)) if processes is not None else ()

    def run(run_dir: Path) -> dict[str, Any]:
        result = harness.run_turret(
            side="ours", script=SCENARIOS / script, cannons=cannons, rampup=rampup, warmup=warmup,
            window=window, run_dir=run_dir, extra_config=extra, turret_extra=option, sample_tree=sample_tree,
        )
        rate = result.get("rate")
        if rate and result.get("turret_cores") is not None:
            result["turret_us_per_result"] = result["turret_cores"] / rate * 1e6
        if result.get("cpu"):
            result["other_cores"] = result["cpu"]["other_cores"]
            result["machine_cores"] = result["cpu"]["machine_cores"]
        tree = (result.get("tree_kib") or {}).get("window_max")
        if tree:
            result["tree_procs"] = tree["procs"]
            for key in ("rss", "pss", "uss"):
                result[f"tree_{key}_mib"] = tree[key] / 1024
                result[f"tree_{key}_kib_per_cannon"] = tree[key] / cannons
            result["main_rss_mib"] = tree["root_rss"] / 1024
            result["main_pss_mib"] = tree["root_pss"] / 1024
            result["main_uss_mib"] = tree["root_uss"] / 1024
            result["smaps_read_ms"] = tree["read_ms"]
        elif sample_tree and result.get("ok"):
            result["ok"] = False
            result["why"] = "no memory sample of the turret's processes in the window"
        if processes and processes > 1 and result.get("ok") and result.get("turret_procs", 0) < processes + 1:
            result["ok"] = False
            result["why"] = f"{result.get('turret_procs')} turret processes in the window, not {processes + 1}"
        return result

    return run


def _bare(processes: int, window: float) -> Callable[[Path], dict[str, Any]]:
    """
    The machine's own ceiling for the CPU-bound rows: ``processes`` plain
    Python processes (no turret, no HQ) calling the script's ``burn`` in a
    loop for ``window`` seconds: calls per second, summed.
    """
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(SCENARIOS)!r})\n"
        "from ours_cpu import burn, ITERATIONS\n"
        "n = 0\n"
        "start = time.monotonic()\n"
        f"end = start + {window!r}\n"
        "while time.monotonic() < end:\n"
        "    burn(ITERATIONS)\n"
        "    n += 1\n"
        "print(n / (time.monotonic() - start), time.process_time())\n"
    )

    def run(run_dir: Path) -> dict[str, Any]:
        run_dir.mkdir(parents=True, exist_ok=True)
        before = harness.cpu_snapshot()
        procs = [harness.spawn([sys.executable, "-c", code], stdout=subprocess.PIPE, log_path=run_dir / f"bare{i}.err")
                 for i in range(processes)]
        outs = []
        for proc in procs:
            out, _ = proc.communicate(timeout=window + 30)
            outs.append(out)
        after = harness.cpu_snapshot()
        harness.forget_finished()
        try:
            figures = [[float(x) for x in out.split()] for out in outs]
            rates = [rate for rate, _ in figures]
        except ValueError:
            return {"ok": False, "why": f"a bare process failed: {outs!r}"}
        cpu = harness.other_cpu(before, after)
        # The bare processes have ended by the second snapshot, which
        # therefore does not count them as ours: take their CPU off by hand.
        bare_cores = sum(used for _, used in figures) / max(after[0] - before[0], 1e-9)
        cpu["our_cores"] += bare_cores
        cpu["other_cores"] = max(0.0, cpu["other_cores"] - bare_cores)
        return {"ok": True, "rate": sum(rates), "per_process": rates, "cpu": cpu, "other_cores": cpu["other_cores"],
                "machine_cores": cpu["machine_cores"], "turret_cores": bare_cores}

    return run


def _density(cannons: int, processes: int, rampup: float, settle: float, window: float) -> Callable[[Path], dict[str, Any]]:
    base = _run("ours_wait.py", cannons, processes, rampup, rampup + settle, window, sample_tree=True)
    return harness.with_scheduled(base, cannons)


def _with_env(run: Callable[[Path], dict[str, Any]], **env: str) -> Callable[[Path], dict[str, Any]]:
    """``run`` with these environment variables set for the turret it starts."""

    def wrapped(run_dir: Path) -> dict[str, Any]:
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            return run(run_dir)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    return wrapped


def variants(Variant: Any, s: Any, nginx: harness.Nginx | None) -> list[Any]:
    """The variants, in the order each repetition runs them."""
    assert nginx is not None
    short = dict(warmup=s.empty_warmup, window=s.empty_window)
    http = dict(warmup=s.http_warmup, window=s.http_window, extra={"target_url": nginx.url})

    def v(key: str, label: str, run: Callable[[Path], dict[str, Any]]) -> Any:
        return Variant(f"cores/{key}", "cores", "ours", label, run)

    out = [
        v("cpu-1", "CPU-bound, 50 cannons, --processes 1", _run("ours_cpu.py", 50, 1, 1, **short)),
        v("cpu-2", "CPU-bound, 50 cannons, --processes 2", _run("ours_cpu.py", 50, 2, 1, **short)),
        v("bare-1", "bare loop, 1 process", _bare(1, s.empty_window)),
        v("bare-2", "bare loop, 2 processes", _bare(2, s.empty_window)),
        v("empty-1", "empty, 10 cannons, --processes 1", _run("ours_empty.py", 10, 1, 1, **short)),
        v("empty-2", "empty, 20 cannons, --processes 2", _run("ours_empty.py", 20, 2, 1, **short)),
        v("empty-none", "empty, 10 cannons, no option", _run("ours_empty.py", 10, None, 1, **short)),
        v("fast-1", "fast_http, 50 cannons, --processes 1", _run("ours_fast_get.py", 50, 1, 1, **http)),
        v("fast-none", "fast_http, 50 cannons, no option", _run("ours_fast_get.py", 50, None, 1, **http)),
    ]
    for n in DENSITY:
        out.append(v(f"density-{n}", f"{n:,} x 2 s, --processes 2",
                     _density(n, 2, DENSITY_RAMPUP, s.density_settle, s.density_window)))
    for p in (1, 2):
        out.append(v(f"memory-{p}", f"{1000 * p:,} x 2 s, --processes {p}",
                     _density(1000 * p, p, s.density_rampup, s.density_settle, s.density_window)))
    out.append(v("memory-2-spawned", "2,000 x 2 s, --processes 2, spawned workers",
                 _with_env(_density(2000, 2, s.density_rampup, s.density_settle, s.density_window),
                           OCT_TURRET_WORKERS="spawn")))
    return out


DETAIL_METRICS = [
    ("rate", 0), ("pct_of_scheduled", 1), ("turret_cores", 2), ("process_cores", 2), ("sink_cores", 2),
    ("turret_us_per_result", 1), ("turret_procs", 0), ("tree_rss_mib", 1), ("tree_pss_mib", 1),
    ("tree_uss_mib", 1), ("main_rss_mib", 1), ("main_pss_mib", 1), ("main_uss_mib", 1), ("tree_rss_kib_per_cannon", 2),
    ("tree_pss_kib_per_cannon", 2), ("smaps_read_ms", 0),
]


def summary_rows(get: Callable[[str], Any], add: Callable[..., None], row: Callable[[list[str]], None],
                 fmt: Callable[..., str]) -> None:
    """
    The rows of ``cores``: ``add`` compares two variants (ours / "peer":
    here 2 processes / 1, or ``--processes 1`` / no option), ``row`` adds a
    row of its own.
    """
    at_least = lambda x: (lambda o, r: None if r is None else r >= x)  # noqa: E731
    at_most = lambda x: (lambda o, r: None if o is None else o <= x)  # noqa: E731

    def cores_row(scenario: str, keys: tuple[str, ...]) -> None:
        for metric, what in (("turret_cores", "turret cores (main + workers)"), ("process_cores", "main process cores"),
                             ("sink_cores", "fake HQ cores"), ("other_cores", "other processes' cores"),
                             ("turret_us_per_result", "turret CPU us/result")):
            vs = [get(k) for k in keys]
            if all(x is None or x.median(metric) is None for x in vs):
                continue
            cells = [f"{x.label}: {fmt(x.median(metric), 2 if 'cores' in metric else 1)}" for x in vs if x is not None]
            row([scenario, what, cells[0], cells[1] if len(cells) > 1 else "", "", ""])

    one, two = get("cores/cpu-1"), get("cores/cpu-2")
    add("Cores: CPU-bound script (0.5 ms), 50 cannons", "results/s, 2 / 1 processes", two, one, "rate",
        target=">= 1.8x", check=at_least(1.8))
    if one is not None and two is not None and one.median("rate") and two.median("rate") is not None:
        row(["", "scaling efficiency rate(2) / (2 x rate(1))", fmt(100 * two.median("rate") / (2 * one.median("rate")), 1, "%"),
             "", "", ""])
    cores_row("", ("cores/cpu-2", "cores/cpu-1"))
    add("", "the machine's ceiling: the same work in bare processes, calls/s, 2 / 1", get("cores/bare-2"),
        get("cores/bare-1"), "rate")
    add("", "turret results/s / bare calls/s, 1 process", one, get("cores/bare-1"), "rate")
    add("", "turret results/s / bare calls/s, 2 processes", two, get("cores/bare-2"), "rate")
    add("Cores: empty transactions, 10 cannons per process", "results/s, 2 / 1 processes", get("cores/empty-2"),
        get("cores/empty-1"), "rate")
    cores_row("", ("cores/empty-2", "cores/empty-1"))
    add("--processes 1 / no option: empty, 10 cannons", "results/s", get("cores/empty-1"), get("cores/empty-none"),
        "rate", target=">= 0.97x", check=at_least(0.97))
    add("", "turret CPU us/result (lower is better)", get("cores/empty-1"), get("cores/empty-none"), "turret_us_per_result", 2)
    add("--processes 1 / no option: fast_http, 50 cannons", "requests/s", get("cores/fast-1"), get("cores/fast-none"),
        "rate", target=">= 0.97x", check=at_least(0.97))
    add("", "turret CPU us/request (lower is better)", get("cores/fast-1"), get("cores/fast-none"), "turret_us_per_result", 2)
    for n in DENSITY:
        v = get(f"cores/density-{n}")
        if v is None:
            continue
        moon = n == 100_000
        add(f"Density {n:,} x 2 s, rampup 10 s, --processes 2", f"results/s, % of {n // 2:,}/s scheduled", v, None,
            "pct_of_scheduled", 1, "%", target=">= 95%", check=lambda o, r: None if o is None else o >= 95)
        add("", "results/s", v, None, "rate")
        add("", "RSS summed, MiB (main + workers)", v, None, "tree_rss_mib", 1)
        add("", "RSS summed, KiB per cannon", v, None, "tree_rss_kib_per_cannon", 2)
        add("", "PSS summed, MiB", v, None, "tree_pss_mib", 1)
        add("", "PSS summed, KiB per cannon", v, None, "tree_pss_kib_per_cannon", 2,
            target="<= 8 KB" if moon else "", check=at_most(8) if moon else None)
        add("", "turret cores (main + workers)", v, None, "turret_cores", 2)
        add("", "other processes' cores", v, None, "other_cores", 2)
    one, forked, spawned = get("cores/memory-1"), get("cores/memory-2"), get("cores/memory-2-spawned")
    if one is not None and (forked is not None or spawned is not None):
        def added(two: Any, metric: str) -> float | None:
            a = two.median(metric) if two is not None else None
            b = one.median(metric)
            return None if a is None or b is None else a - b

        for metric, what in (("tree_rss_mib", "RSS"), ("tree_pss_mib", "PSS"), ("tree_uss_mib", "USS")):
            f, sp = added(forked, metric), added(spawned, metric)
            row(["Memory per extra process, 1,000 cannons each (2 s waits)" if metric == "tree_rss_mib" else "",
                 f"{what} the 2nd process adds (summed over the turret's processes), MiB",
                 f"forked: +{fmt(f, 1)}", f"spawned: +{fmt(sp, 1)}",
                 f"{f / sp:.2f}x" if f is not None and sp else "n/a", ""])
        for metric, what in (("tree_pss_mib", "PSS summed, MiB"), ("tree_procs", "processes summed")):
            cells = [f"{x.label}: {fmt(x.median(metric), 1)}" for x in (one, forked, spawned) if x is not None]
            row(["", what, *cells, *[""] * (4 - len(cells))])
        add("", "main process RSS, MiB (forked / --processes 1)", forked, one, "main_rss_mib", 1)


#: The pairs whose ratio each repetition gives (ours, the other side), with what the ratio is.
PAIRS = (
    ("cores/cpu-2", "cores/cpu-1", "CPU-bound, 2 / 1 processes"),
    ("cores/bare-2", "cores/bare-1", "bare loop, 2 / 1 processes"),
    ("cores/empty-2", "cores/empty-1", "empty, 2 / 1 processes (10 cannons each)"),
    ("cores/empty-1", "cores/empty-none", "empty, --processes 1 / no option"),
    ("cores/fast-1", "cores/fast-none", "fast_http, --processes 1 / no option"),
)


def report_sections(variants_by_key: dict[str, Any]) -> list[str]:
    """
    Each repetition's ratios, beside the CPU that processes other than the
    benchmark's used during the two runs (the higher of the two): on a
    machine shared with other work, the repetitions where others used
    little tell the most.
    """
    lines: list[str] = []
    for ours_key, other_key, what in PAIRS:
        ours, other = variants_by_key.get(ours_key), variants_by_key.get(other_key)
        if ours is None or other is None or not ours.runs or not other.runs:
            continue
        if not lines:
            lines += ["", "### cores: the ratio of each repetition", "",
                      "| pair | repetition | ratio | other processes' CPU (cores, the higher of the two runs) |",
                      "|---|---|---|---|"]
        for i, (a, b) in enumerate(zip(ours.runs, other.runs), 1):
            if not (a.get("ok") and b.get("ok") and a.get("rate") and b.get("rate")):
                lines.append(f"| {what} | {i} | failed | |")
                continue
            others = max(a.get("other_cores") or 0.0, b.get("other_cores") or 0.0)
            lines.append(f"| {what} | {i} | {a['rate'] / b['rate']:.2f}x | {others:.2f} |")
    return lines
