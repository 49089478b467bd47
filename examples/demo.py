"""
``make demo``: a complete local load test, no HQ needed.

Starts the example HTTP target on a free port, runs the treq example script
standalone (50 cannons, 3 s rampup) for the duration, shows the progress
(a live line in a terminal) and the summary, and stops the target. Nothing
is left running. The run's HTML report and results file are written next
to the project (``demo-report.html``, ``demo-results.csv``); the last lines
say where.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
PROJECT = EXAMPLES.parent
TWISTD = str(Path(sys.executable).parent / "twistd")


def start_target() -> tuple[subprocess.Popen[str], str]:
    target = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "target.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert target.stdout is not None
    line = target.stdout.readline().strip()
    if not line.startswith("listening on "):
        target.kill()
        raise SystemExit(f"demo: the HTTP target did not start ({line!r})")
    return target, line.split("listening on ", 1)[1]


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a local load test.")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--cannons", type=int, default=50)
    parser.add_argument("--rampup", type=float, default=3.0)
    parser.add_argument("--report", type=Path, default=PROJECT / "demo-report.html")
    parser.add_argument("--results", type=Path, default=PROJECT / "demo-results.csv")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oct-demo-"))
    target, url = start_target()
    try:
        config = json.loads((EXAMPLES / "http_get" / "config.json").read_text())
        config.update(
            target_url=url,
            cannons=args.cannons,
            rampup=min(args.rampup, args.duration / 2),
            progress_interval=5.0 if args.duration >= 10 else 1.0,
        )
        shutil.copy(EXAMPLES / "http_get" / "http_get.py", work)
        (work / "config.json").write_text(json.dumps(config, indent=2))
        print(f"demo: target {url}; {args.cannons} cannons for {args.duration:g}s", flush=True)
        turret = subprocess.Popen(
            [
                TWISTD, "-n", "--pidfile=", "--logfile=-",
                "oct-turret", "-c", str(work / "config.json"),
                "--standalone", "--duration", str(args.duration),
                "--summary-json", str(work / "summary.json"),
                "--report", str(args.report.absolute()),
                "--results", str(args.results.absolute()),
            ],
            cwd=work,
        )
        while True:
            try:
                code = turret.wait()
                break
            except KeyboardInterrupt:
                turret.send_signal(signal.SIGINT)
        print(f"demo: turret exited with status {code}", flush=True)
        if args.report.exists():
            print(f"demo: results of every transaction: {args.results.absolute()}")
            print(f"demo: the run's report, open it in a browser: {args.report.absolute()}",
                  flush=True)
        return code
    finally:
        target.terminate()
        try:
            target.wait(timeout=5)
        except subprocess.TimeoutExpired:
            target.kill()
            target.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
