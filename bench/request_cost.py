"""
What per-request statistics cost a ``self.fast_http`` request, counted in
CPU instructions (``docs/requests.rst``): deterministic where the host's
speed is not.

    .venv/bin/python bench/request_cost.py               # 50 sessions
    .venv/bin/python bench/request_cost.py --sessions 1

A loop of ``FastSession.get`` against the bench's own nginx, ``--sessions``
sessions at once, each request followed by what a cannon does with its
transaction (``result_of``, ``RunStats.record``, ``encode_result``),
runs under valgrind's callgrind once with ``--small`` and once with
``--large`` requests per session, for each of:

- ``off``: no recording (the turret with per-request statistics off);
- ``hook``: the request is a ``RecordedRequest`` and its recording is
  called, into a table that counts nothing;
- ``table``: the run's ``RequestTable``, without the HQ's timer
  (``request_timers: false``);
- ``table+timer``: both, as a turret records by default.

The difference of the two runs' instruction counts, divided by the
difference in requests, is what one request costs in the steady state
(start-up and the imports cancel out). It leaves out the kernel's share of
a request (the sockets), which in a live turret is a good part of its CPU
time, so the percentages are of the process's own instructions.

Needs ``valgrind`` (Debian's package). Takes a few minutes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
MODES = ("off", "hook", "table", "table+timer")


def child(mode: str, sessions: int, requests: int, url: str) -> None:
    """The measured loop (run under callgrind)."""
    from twisted.internet import defer, reactor

    from octtwisted._core.clocks import Clocks
    from octtwisted._firing.cannon import CannonSettings
    from octtwisted._firing.outcome import result_of
    from octtwisted._hq.wire import encode_result
    from octtwisted._http.fast.client import FastHTTPClient
    from octtwisted._http.fast.session import FastSession
    from octtwisted._http.recording import Recording
    from octtwisted._stats.requests import RequestTable
    from octtwisted._stats.summary import RunStats

    class NoTable:
        def record(self, name: str, method: str, seconds: float, status: int = 0,
                   size: int = -1, reason: str | None = None) -> str:
            return name

        def record_response(self, name: str, method: str, seconds: float, status: int,
                            size: int) -> str:
            return name

        def admit(self, name: str) -> str:
            return name

    table = RequestTable()
    stats = RunStats()
    client = FastHTTPClient(reactor)
    client.recording = {
        "off": None,
        "hook": Recording(reactor, NoTable(), False),
        "table": Recording(reactor, table, False),
        "table+timer": Recording(reactor, table, True),
    }[mode]
    if mode != "off":
        stats.requests = table

    class Transaction:
        custom_timers: dict[str, Any] = {}

    settings = CannonSettings(
        index=0, turret_name="t", make_transaction=Transaction, clocks=Clocks(reactor),
        report=stats.record, started_at=0.0, request_timers=mode == "table+timer",
    )

    async def cannon(session: FastSession, transaction: Transaction) -> None:
        for _ in range(requests):
            transaction.custom_timers = {}
            started = reactor.seconds()
            await session.get(url)
            result = result_of(settings, transaction, started, started, reactor.seconds() - started, "")
            stats.record(result)
            encode_result(result)

    async def main() -> None:
        loops = []
        for _ in range(sessions):
            session = FastSession(client)
            transaction = Transaction()
            session.owner = transaction
            loops.append(defer.ensureDeferred(cannon(session, transaction)))
        await defer.gatherResults(loops)

    failed: list[Any] = []
    done = defer.ensureDeferred(main())
    done.addErrback(failed.append)
    done.addBoth(lambda _: reactor.stop())
    reactor.run()
    if failed:
        failed[0].printTraceback()
        sys.exit(1)


def instructions(mode: str, sessions: int, requests: int, url: str, out: Path) -> int:
    """The instructions callgrind counted in one run of :func:`child`."""
    argv = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, __file__, "--child", mode, str(sessions), str(requests), url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{mode}, {requests} requests: {done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--small", type=int, default=100, help="requests per session, first run")
    parser.add_argument("--large", type=int, default=400, help="requests per session, second run")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, sessions, requests, url = args.child
        child(mode, int(sessions), int(requests), url)
        return 0
    sys.path.insert(0, str(BENCH))
    import harness

    nginx = harness.Nginx()
    nginx.start()
    try:
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
            jobs = {
                (mode, n): pool.submit(instructions, mode, args.sessions, n, nginx.url, Path(tmp) / f"{mode}.{n}")
                for mode in MODES for n in (args.small, args.large)
            }
            per = {
                mode: (jobs[mode, args.large].result() - jobs[mode, args.small].result())
                / ((args.large - args.small) * args.sessions)
                for mode in MODES
            }
    finally:
        nginx.stop()
    base = per["off"]
    print(f"instructions per request, {args.sessions} sessions ({args.small} and {args.large} requests each):")
    for mode in MODES:
        extra = per[mode] - base
        print(f"  {mode:12s} {per[mode]:9,.0f}  {extra:+8,.0f}  {extra / base:+6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
