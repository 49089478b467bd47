"""
Soak test (not a CI test): the real turret against FakeHQ for a long run.

    .venv/bin/python bench/soak.py --minutes 10 --rate 2000

Runs ``twistd oct-turret`` with empty paced transactions at about
``rate`` transactions/s, samples the turret's RSS every 10 s, then kills
it and checks conservation: every result the turret says it made was
received by the HQ exactly once. Prints RSS at start (after a 30 s warm-up)
and at the end, and exits non-zero if RSS grew by more than 10% or a result
was lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater, react

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from octtwisted.testing import FakeHQ  # noqa: E402

TWISTD = str(Path(sys.executable).parent / "twistd")


class Output(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.text = bytearray()
        self.ended: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.text.extend(data)

    errReceived = outReceived

    def processEnded(self, reason: object) -> None:
        self.ended.callback(None)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def soak(args: argparse.Namespace) -> int:
    hq = FakeHQ()
    hq.start()
    cannons = 20
    work = Path(tempfile.mkdtemp(prefix="oct-soak-"))
    (work / "empty.py").write_text((ROOT / "bench" / "scripts" / "empty.py").read_text())
    config = {
        "name": "soak", "cannons": cannons, "rampup": 1, "script": "empty.py",
        "pacing": cannons / args.rate, "progress_interval": 60,
        **hq.turret_config(),
    }
    (work / "config.json").write_text(json.dumps(config))
    uuid = "soak-turret"
    out = Output()
    process = reactor.spawnProcess(
        out, TWISTD,
        [TWISTD, "-n", "--pidfile=", "--logfile=-", "oct-turret", "-c", str(work / "config.json"), "--uuid", uuid],
        env=None, path=str(work),
    )
    await hq.wait_for_status("ready", uuid)
    await hq.handshake(uuid)
    hq.publish("start", "open fire")
    began = time.monotonic()
    samples: list[tuple[float, int, int]] = []
    end = began + args.minutes * 60
    while time.monotonic() < end:
        await deferLater(reactor, 10, lambda: None)
        samples.append((time.monotonic() - began, rss_kib(process.pid), len(hq.results)))
        t, rss, n = samples[-1]
        print(f"{t:6.0f}s  rss {rss / 1024:6.1f} MiB  results {n:>9,}  ({n / t:,.0f}/s)", flush=True)
    hq.publish("kill", None)
    await out.ended
    text = out.text.decode("utf-8", "replace")
    made = int(text.split("turret killed: ")[1].split(" results")[0])
    await hq.wait_for_results(made, timeout=30)
    ids = {(r["epoch"], r["elapsed"]) for r in hq.results}
    start_rss = next(rss for t, rss, _ in samples if t >= 30)
    end_rss = samples[-1][1]
    growth = (end_rss - start_rss) / start_rss * 100
    duration = samples[-1][0]
    print(f"\nran {duration:.0f}s at {made / duration:,.0f} transactions/s")
    print(f"RSS after 30 s: {start_rss / 1024:.1f} MiB; at the end: {end_rss / 1024:.1f} MiB ({growth:+.1f}%)")
    print(f"made {made:,}; received {len(hq.results):,}; distinct {len(ids):,}; "
          f"lost {made - len(ids):,}; duplicated {len(hq.results) - len(ids):,}")
    hq.stop()
    ok = growth <= 10 and made == len(hq.results) == len(ids)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=2000)
    args = parser.parse_args()

    async def run(_: object) -> None:
        code = await soak(args)
        if code:
            raise SystemExit(code)

    react(lambda r: defer.ensureDeferred(run(r)))


if __name__ == "__main__":
    main()
