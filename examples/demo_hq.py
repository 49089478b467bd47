"""
``make demo-hq``: the whole OCT system on this machine, every part real.

1. the example HTTP target (``examples/target.py``) on a free port;
2. the real OCT HQ, ``oct-hq`` (``oct`` 0.4.12 through the bridges of the
   ``hq`` extra): ``oct-hq new-project demo-hq/project``, whose config gets
   two turrets running ``examples/http_get/http_get.py`` against the
   target, free ports and the run time; then ``oct-hq pack-turrets``;
3. two of our turrets, each started from the package ``pack-turrets``
   wrote: ``twistd -n oct-turret --tar demo-hq/project/NAME.tar.gz``
   (both plain: one is to get ``--processes 2`` once that option exists);
4. ``oct-hq run demo-hq/project``: the HQ waits for both turrets, starts
   them, collects results for the run time, stops them and writes its
   report.

It ends by printing how many results the HQ stored (per turret), where its
report and ``results.sqlite`` are, and stops everything it started. All
output goes to ``demo-hq/*.log``; ``demo-hq/`` is made anew at each run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

EXAMPLES = Path(__file__).resolve().parent
PROJECT_ROOT = EXAMPLES.parent
BIN = Path(sys.executable).parent
TURRETS = (("navigation", 20), ("search", 10))


def say(line: str) -> None:
    print(f"demo-hq: {line}", flush=True)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def oct_hq(*args: str, cwd: Path, log: IO[bytes]) -> None:
    """Run one ``oct-hq`` command to its end; stop the demo if it fails."""
    done = subprocess.run([str(BIN / "oct-hq"), *args], cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"demo-hq: oct-hq {' '.join(args)} failed (exit {done.returncode}): see {log.name}")


def start_target(children: list[subprocess.Popen[bytes]]) -> str:
    target = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "target.py"), "--port", "0"], stdout=subprocess.PIPE
    )
    children.append(target)
    assert target.stdout is not None
    line = target.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        raise SystemExit(f"demo-hq: the HTTP target did not start ({line!r})")
    return line.split("listening on ", 1)[1]


def make_project(work: Path, url: str, duration: float, log: IO[bytes]) -> Path:
    oct_hq("new-project", "project", cwd=work, log=log)
    project = work / "project"
    shutil.copy(EXAMPLES / "http_get" / "http_get.py", project / "test_scripts")
    publish, rc, external = free_ports(3)
    config = json.loads((project / "config.json").read_text())
    config.update(
        run_time=duration,
        results_ts_interval=max(1, round(duration / 10)),
        min_turrets=len(TURRETS),
        hq_address="127.0.0.1",
        publish_port=publish,
        rc_port=rc,
        external_publisher=external,
        turrets=[
            {"name": name, "cannons": cannons, "rampup": 2, "script": "test_scripts/http_get.py",
             "target_url": url, "transaction_timeout": 10}
            for name, cannons in TURRETS
        ],
    )
    (project / "config.json").write_text(json.dumps(config, indent=2))
    oct_hq("pack-turrets", "project", cwd=work, log=log)
    return project


def run_hq(work: Path, duration: float, children: list[subprocess.Popen[bytes]]) -> int:
    """``oct-hq run``, its output in hq.log; a line every 5 s meanwhile."""
    with open(work / "hq.log", "wb") as log:
        hq = subprocess.Popen([str(BIN / "oct-hq"), "run", "project"], cwd=work, stdout=log,
                              stderr=subprocess.STDOUT)
        children.append(hq)
        began = time.monotonic()
        deadline = began + duration + 120
        while hq.poll() is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"demo-hq: the HQ did not end in time: see {work / 'hq.log'}")
            time.sleep(5)
            progress = (work / "hq.log").read_bytes().rsplit(b"\r", 2)
            if hq.poll() is None and len(progress) > 1:
                say(f"{time.monotonic() - began:.0f}s: HQ: {progress[-2].decode('utf-8', 'replace').strip()}")
    return hq.returncode


def stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in reversed(children):
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the whole OCT system here: the real HQ and two turrets.")
    parser.add_argument("--duration", type=float, default=20.0, help="the HQ's run_time, in seconds")
    parser.add_argument("--folder", type=Path, default=PROJECT_ROOT / "demo-hq")
    args = parser.parse_args()
    if not (BIN / "oct-hq").exists():
        raise SystemExit("demo-hq: oct-hq is not installed here: pip install -e '.[hq]' (make demo-hq does)")
    work = args.folder.absolute()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    children: list[subprocess.Popen[bytes]] = []
    try:
        url = start_target(children)
        with open(work / "oct-hq.log", "wb") as log:
            project = make_project(work, url, args.duration, log)
        say(f"target {url}; HQ project {project} (oct-hq new-project, pack-turrets)")
        for name, cannons in TURRETS:
            with open(work / f"turret-{name}.log", "wb") as log:
                children.append(subprocess.Popen(
                    [str(BIN / "twistd"), "-n", "--pidfile=", "--logfile=-", "oct-turret",
                     "--tar", str(project / f"{name}.tar.gz")],
                    cwd=work, stdout=log, stderr=subprocess.STDOUT,
                ))
            say(f"turret {name}: {cannons} cannons, from {name}.tar.gz (log: turret-{name}.log)")
        say(f"oct-hq run project: {args.duration:g}s once both turrets answer (log: hq.log)")
        code = run_hq(work, args.duration, children)
        if code != 0:
            say(f"the HQ failed (exit {code}): see {work / 'hq.log'}")
            return 1
        (results,) = (project / "results").iterdir()
        database = results / "results.sqlite"
        with sqlite3.connect(database) as reader:
            counts = reader.execute("SELECT turret_name, count(*) FROM result GROUP BY turret_name").fetchall()
            errors = reader.execute("SELECT count(*) FROM result WHERE error != ''").fetchone()[0]
        total = sum(n for _, n in counts)
        each = ", ".join(f"{name}: {n:,}" for name, n in counts)
        say(f"the HQ stored {total:,} results ({each}; {errors:,} errors)")
        say(f"its report: {results / 'results.html'}")
        say(f"its results: {database}")
        return 0
    finally:
        stop(children)
        say("stopped the turrets, the HQ and the target")


if __name__ == "__main__":
    sys.exit(main())
