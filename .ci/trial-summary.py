"""
Run trial and end with one line ``N passed, N failed``.

Exits non-zero when a test failed or errored, or when no test ran (trial
prints a bare ``PASSED`` for an empty run).
"""

import re
import subprocess
import sys


def main() -> int:
    command = [sys.executable, "-m", "twisted.trial", *sys.argv[1:]]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    verdict = ""
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.startswith(("PASSED", "FAILED")):
            verdict = line.strip()
    code = process.wait()
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", verdict)}
    passed = counts.get("successes", 0)
    failed = sum(counts.get(k, 0) for k in ("failures", "errors", "unexpectedSuccesses"))
    skipped = counts.get("skips", 0)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if passed == 0:
        print("no test ran", file=sys.stderr)
        return 1
    return 1 if (code != 0 or failed) else 0


if __name__ == "__main__":
    sys.exit(main())
