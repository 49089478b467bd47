"""
What ``--results`` costs, measured as CPU time per transaction, which a
busy shared machine disturbs less than a rate does.

    .venv/bin/python bench/results_overhead.py [--seconds 5] [--reps 3] [--cannons 10]

Runs the empty-transaction script standalone (no HQ, so the turret's own
cost per transaction is the smallest and the file's share the largest),
alternately without and with ``--results`` (CSV, then JSON lines), and
prints for each: transactions/s, and the turret process's CPU time (user +
system, from its rusage) per transaction, as medians of the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWISTD = str(Path(sys.executable).parent / "twistd")
SCRIPT = ROOT / "bench" / "scenarios" / "ours_empty.py"


def run(folder: Path, seconds: float, cannons: int, results: str | None) -> tuple[float, float]:
    (folder / SCRIPT.name).write_text(SCRIPT.read_text())
    config = {"name": "overhead", "cannons": cannons, "rampup": 0, "script": SCRIPT.name,
              "progress_interval": 0}
    (folder / "config.json").write_text(json.dumps(config))
    argv = [TWISTD, "-n", "--pidfile=", "--logfile=turret.log", "oct-turret", "-c",
            str(folder / "config.json"), "--standalone", "--duration", str(seconds),
            "--summary-json", str(folder / "summary.json")]
    if results:
        argv += ["--results", str(folder / results)]
    process = subprocess.Popen(argv, cwd=folder, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"turret failed: {(folder / 'turret.log').read_text()[-2000:]}")
    summary = json.loads((folder / "summary.json").read_text())
    transactions = summary["transactions"]
    if results:
        rows = sum(1 for _ in open(folder / results, "rb")) - (1 if results.endswith(".csv") else 0)
        assert rows == transactions, (rows, transactions)
        (folder / results).unlink()
    cpu = usage.ru_utime + usage.ru_stime
    return summary["transactions_per_second"], cpu / transactions * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cannons", type=int, default=10)
    args = parser.parse_args()
    variants = {"without": None, "csv": "results.csv", "jsonl": "results.jsonl"}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="oct-overhead-") as work:
        for rep in range(args.reps):
            for name, results in variants.items():
                folder = Path(work) / f"{name}-{rep}"
                folder.mkdir()
                figures[name].append(run(folder, args.seconds, args.cannons, results))
                tps, us = figures[name][-1]
                print(f"  run {rep + 1} {name:8} {tps:10,.0f} tx/s  {us:6.2f} us CPU/tx", flush=True)
    base_tps = statistics.median(t for t, _ in figures["without"])
    base_us = statistics.median(u for _, u in figures["without"])
    print(f"empty transaction, {args.cannons} cannons, standalone, {args.seconds:g} s x {args.reps} "
          "(medians):")
    for name in variants:
        tps = statistics.median(t for t, _ in figures[name])
        us = statistics.median(u for _, u in figures[name])
        print(f"  {name:8} {tps:10,.0f} tx/s ({tps / base_tps:5.2f}x)   "
              f"{us:6.2f} us CPU/tx (+{(us / base_us - 1) * 100:5.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
