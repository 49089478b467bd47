"""
A one-off experiment (not part of ``make bench``): what does a worker of
``--processes`` cost in memory when it is forked from a parent that has
already imported everything (after ``gc.collect(); gc.freeze()``), as the
turret's zygote forks them, against one spawned fresh (``spawnProcess``
of ``twistd oct-turret --worker K/N``, which imports everything again: the
turret's fallback, and ``OCT_TURRET_WORKERS=spawn``)? It measures children
that only sleep; ``make bench``'s ``cores`` scenario measures workers that
fire (rows "Memory per extra process").

    .venv/bin/python bench/fork_memory.py [--script bench/scenarios/ours_wait.py] [--work 2]

Both processes make the same imports (:data:`PREPARE`: the epoll reactor
installed, ``twisted.internet.reactor``, the turret's modules, twistd, and
the script), then sleep:

* **forked**: this process runs :data:`PREPARE`, then ``gc.collect();
  gc.freeze()``, and forks a child that sleeps;
* **spawned**: a fresh ``python -c PREPARE`` that sleeps.

Printed for each (KiB, from ``/proc/PID/smaps_rollup``): RSS, PSS (a page
shared with other processes divided among them) and USS
(``Private_Clean + Private_Dirty``: what the process alone holds, what its
end would free). The forked child's USS is what a forked worker adds; the
spawned process's USS is what a spawned worker adds (minus the shared
libraries' pages, which both share with every Python on the machine).

With ``--work S`` (default 2; 0 to skip), two more forked children first
run the reactor for S seconds, making and dropping small objects and
ending with a full ``gc.collect()``, then sleep: one forked after
``gc.freeze()``, one without it. A collection that walks the inherited
objects writes their headers and unshares their pages; frozen objects are
not walked.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

#: The imports of a worker: run by the parent before it forks, and by the
#: spawned process (``python -c``). ``SCRIPT`` is the script's path.
PREPARE = """\
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import reactor
import octtwisted, octtwisted._edge.services, octtwisted._edge.tap, octtwisted._edge.worker
import octtwisted._edge.fleet, octtwisted._edge.standalone
import twisted.scripts.twistd, twisted.application.app
import zmq, orjson
import importlib.util
_spec = importlib.util.spec_from_file_location("bench_script", SCRIPT)
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)
"""

#: What a child does while it is measured.
SLEEP = "import time\nwhile True:\n    time.sleep(3600)\n"


def memory(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (KiB) of one process, from smaps_rollup."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0])
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
    }


def work(seconds: float) -> None:
    """Run the reactor for ``seconds``, churning small objects; then a full collection."""
    from twisted.internet import reactor
    from twisted.internet.task import LoopingCall

    kept: list[object] = []

    def churn() -> None:
        kept.append([{"n": i, "s": str(i)} for i in range(1000)])
        if len(kept) > 20:
            del kept[:10]

    loop = LoopingCall(churn)
    loop.start(0.01)
    reactor.callLater(seconds, reactor.stop)
    reactor.run()
    gc.collect()


def fork_child(ready_w: int, seconds: float) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            if seconds:
                work(seconds)
            os.write(ready_w, b"x")
            while True:
                time.sleep(3600)
        finally:
            os._exit(0)
    return pid


def wait_ready(ready_r: int, count: int, timeout: float) -> None:
    import select

    got = 0
    deadline = time.monotonic() + timeout
    while got < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([ready_r], [], [], left)[0]:
            raise SystemExit("a child did not get ready in time")
        got += len(os.read(ready_r, 16))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--script", default=str(BENCH / "scenarios" / "ours_wait.py"))
    parser.add_argument("--work", type=float, default=2.0, help="seconds of reactor work in the extra children (0: none)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait before measuring")
    args = parser.parse_args()
    script = str(Path(args.script).resolve())

    # The spawned process first: this process imports nothing of the turret yet.
    fresh = subprocess.Popen(
        [sys.executable, "-c", f"SCRIPT = {script!r}\n" + PREPARE + "import sys\nsys.stdout.write('ready\\n'); sys.stdout.flush()\n" + SLEEP],
        stdout=subprocess.PIPE,
    )
    children = []
    try:
        assert fresh.stdout is not None
        if fresh.stdout.readline().strip() != b"ready":
            raise SystemExit(f"the spawned process did not get ready (exit {fresh.poll()})")

        exec(PREPARE, {"SCRIPT": script, "__name__": "prepared"})
        ready_r, ready_w = os.pipe()
        gc.collect()
        # Without freeze first (its GC will walk the inherited objects)...
        if args.work:
            children.append(("forked, no freeze, after work", fork_child(ready_w, args.work)))
        gc.freeze()
        children.append(("forked after gc.freeze(), sleeping", fork_child(ready_w, 0)))
        if args.work:
            children.append(("forked after gc.freeze(), after work", fork_child(ready_w, args.work)))
        wait_ready(ready_r, len(children), 30 + 2 * args.work)
        time.sleep(args.settle)

        rows = [("parent (imported, frozen)", memory(os.getpid()))]
        rows += [(label, memory(pid)) for label, pid in children]
        rows.append(("spawned fresh (python -c imports), sleeping", memory(fresh.pid)))
        print(f"Python {sys.version.split()[0]}, script {Path(script).name}, modules imported: {len(sys.modules)}, "
              f"objects frozen: {gc.get_freeze_count():,}")
        print(f"{'process':48} {'RSS KiB':>9} {'PSS KiB':>9} {'USS KiB':>9}")
        for label, m in rows:
            print(f"{label:48} {m['rss']:>9,} {m['pss']:>9,} {m['uss']:>9,}")
        forked = dict(rows)["forked after gc.freeze(), sleeping"]
        spawned = rows[-1][1]
        print(f"\nA forked worker adds {forked['uss']:,} KiB (USS) against {spawned['uss']:,} KiB for a spawned one: "
              f"{spawned['uss'] - forked['uss']:,} KiB less ({100 * (1 - forked['uss'] / spawned['uss']):.0f}%); "
              f"PSS {forked['pss']:,} against {spawned['pss']:,} KiB.")
        return 0
    finally:
        for _, pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        fresh.kill()
        fresh.wait()


if __name__ == "__main__":
    sys.exit(main())
