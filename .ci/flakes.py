"""
Run ``make test`` N times in a row and print which tests failed how often.

    python3 .ci/flakes.py [--runs 10] [--logs DIR] [--load]

Run it in a fresh clone (``git clone . /tmp/fresh-$$``): each run's whole
output is kept in ``DIR/run-K.log``; the table at the end lists, per test,
how many runs it failed or errored in and the first line of its last
error.  ``--load`` keeps one core busy with a ``yes > /dev/null`` for the
whole time, the way a CI machine shared with another job is.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

SEPARATOR = "=" * 79
TEST_ID = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|FailTest|Check|Timeout)\b")
VERDICT = re.compile(r"^(\d+) passed, (\d+) failed")


def failures(log: str) -> list[tuple[str, str, str]]:
    """
    The (test id, kind, first line of the reason) of every failed or
    errored test in one trial output.
    """
    found = []
    for block in log.split(SEPARATOR):
        block = block.split("-" * 79)[0]  # the summary after the last one
        lines = [line for line in block.strip().splitlines() if line.strip()]
        if not lines or lines[0] not in ("[FAIL]", "[ERROR]"):
            continue
        kind = lines[0].strip("[]")
        ids = []
        for line in reversed(lines):
            if not TEST_ID.match(line.strip()):
                break
            ids.append(line.strip())
        body = [line for line in lines[1 : len(lines) - len(ids)] if not line.startswith(" ")]
        reason = next((line for line in body if EXCEPTION.match(line)), body[-1] if body else "")
        found.extend((test, kind, reason[:160]) for test in ids)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--logs", default=None)
    parser.add_argument("--load", action="store_true", help="keep one core busy meanwhile")
    args = parser.parse_args()
    logs = args.logs or tempfile.mkdtemp(prefix="flakes-")
    os.makedirs(logs, exist_ok=True)
    hog = subprocess.Popen(["sh", "-c", "exec yes > /dev/null"]) if args.load else None
    counts: collections.Counter[str] = collections.Counter()
    reasons: dict[str, str] = {}
    verdicts = []
    try:
        for run in range(1, args.runs + 1):
            began = time.monotonic()
            done = subprocess.run(["make", "test"], capture_output=True, text=True)
            output = done.stdout + done.stderr
            with open(os.path.join(logs, f"run-{run}.log"), "w") as log:
                log.write(output)
            verdict = next(
                (m.group(0) for m in map(VERDICT.match, reversed(output.splitlines())) if m),
                f"no verdict (exit {done.returncode})",
            )
            seconds = time.monotonic() - began
            verdicts.append((run, verdict, done.returncode, seconds))
            for test, kind, reason in failures(output):
                counts[test] += 1
                reasons[test] = f"{kind}: {reason}"
            print(f"run {run}: {verdict} (exit {done.returncode}, {seconds:.0f} s)", flush=True)
    finally:
        if hog is not None:
            hog.kill()
    print()
    print(f"{len(verdicts)} runs of make test{' with one core kept busy' if hog else ''}; logs in {logs}")
    print("| run | verdict | exit | seconds |")
    print("|---|---|---|---|")
    for run, verdict, code, seconds in verdicts:
        print(f"| {run} | {verdict} | {code} | {seconds:.0f} |")
    print()
    if counts:
        print("| test | runs failed | last reason |")
        print("|---|---|---|")
        for test, count in counts.most_common():
            print(f"| {test} | {count}/{len(verdicts)} | {reasons[test]} |")
    else:
        print("no test failed in any run")
    return 1 if counts or any(code for _, _, code, _ in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
