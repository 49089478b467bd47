"""
Profile our turret on the empty-transaction scenario (100 cannons).

    .venv/bin/python bench/profile.py [--cannons 100] [--window 10] [--top 25]
    make bench BENCH_ARGS="--profile"

Runs ``twistd --profile=FILE --profiler=cprofile --savestats oct-turret``
against the fake HQ (``bench/hq_sink.py``), which starts it, counts its
results for the window and sends ``stop``; then the turret gets SIGINT, so
that twistd returns from the reactor and writes the stats (``kill`` would
end the process before that). Prints the top functions by tottime. The
stats file stays under ``bench/.work/`` for ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import signal
import sys
import time
from pathlib import Path

# bench/ goes last on sys.path: this file must not shadow the standard
# library's profile module.
_BENCH_DIR = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _BENCH_DIR] + [_BENCH_DIR]

import harness  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cProfile of our turret, empty transactions.")
    parser.add_argument("--cannons", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    harness.ensure_peer_venv()  # the fake HQ runs on the peers' venv (pyzmq)
    run_dir = harness.WORK / ("profile-" + time.strftime("%Y%m%d-%H%M%S"))
    stats_file = run_dir / "turret.pstats"
    try:
        result = harness.run_turret(
            side="ours",
            script=harness.SCENARIOS / os.environ.get("BENCH_PROFILE_SCRIPT", "ours_empty.py"),
            cannons=args.cannons,
            rampup=1,
            warmup=args.warmup,
            window=args.window,
            run_dir=run_dir,
            sink_extra=["--no-kill"],
            twistd_extra=[f"--profile={stats_file}", "--profiler=cprofile", "--savestats"],
            end_turret=lambda p: harness.end_process(p, signal.SIGINT, 60),
        )
    finally:
        harness.stop_children()
    print(
        f"{args.cannons} cannons, empty transactions, under cProfile: "
        f"{result.get('rate', 0):,.0f} results/s at the HQ over {result.get('window', 0):.1f} s "
        f"(turret {result.get('turret_ended')})"
    )
    if not stats_file.exists():
        print(f"no profile written; turret log:\n{harness.tail(run_dir / 'turret.log', 30)}")
        return 1
    out = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())
    print(f"stats file: {stats_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
