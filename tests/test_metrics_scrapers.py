"""
``--metrics`` under a crowd: a real ``twistd oct-turret --standalone
--metrics PORT`` scraped by 100 clients at once, each asking again as soon
as it has its answer, for a few seconds.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from octtwisted._edge.metrics_web import MAX_SCRAPERS
from tests.helpers import TurretTestCase
from tests.test_metrics_prometheus import free_port

#: Clients scraping at once: more than the endpoint's MAX_SCRAPERS.
SCRAPERS = 100

#: Seconds the crowd scrapes.
CROWD_SECONDS = 4.0

#: Seconds a client waits after an answer before it asks again: each of
#: the 100 asks about 10 times a second (a Prometheus asks once in 5 s).
PAUSE = 0.1

_TRANSACTIONS = re.compile(rb'^oct_transactions_total\{[^}]*outcome="ok"[^}]*\} (\S+)$', re.M)


class _OneScrape(Protocol):
    """``GET /metrics`` on a new connection; fires with all it read when closed."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.done: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:
        self.done.callback(bytes(self.data))


class Tally:
    """What the crowd got: answers, clean refusals, anything else."""

    def __init__(self) -> None:
        self.answered = 0
        self.refused = 0
        self.bad: list[str] = []
        #: (time, transactions ok) read from the answers
        self.counts: list[tuple[float, float]] = []


async def scrape_once(port: int) -> bytes:
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=10)
    client = _OneScrape()
    await connectProtocol(endpoint, client)
    return await client.done


def transactions_in(answer: bytes) -> float | None:
    found = _TRANSACTIONS.search(answer)
    return float(found.group(1)) if found else None


async def keep_scraping(port: int, until: float, tally: Tally) -> None:
    """
    One client: scrape again and again, :data:`PAUSE` seconds after each
    answer, until ``until`` (the reactor's time).
    """
    while reactor.seconds() < until:
        try:
            answer = await scrape_once(port)
        except Exception as e:
            # a connection refused by the kernel (the listen backlog): clean too
            tally.refused += 1
            tally.bad += [] if "refused" in repr(e).lower() else [repr(e)]
            await task.deferLater(reactor, 0.01, lambda: None)
            continue
        if not answer:
            tally.refused += 1  # accepted and closed at once: over MAX_SCRAPERS
            await task.deferLater(reactor, 0.01, lambda: None)
            continue
        head, _, body = answer.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)^content-length: (\d+)", head, re.M)
        if not head.startswith(b"HTTP/1.1 200") or length is None or int(length.group(1)) != len(body):
            tally.bad.append(answer[:200].decode("latin-1"))
            continue
        tally.answered += 1
        count = transactions_in(body)
        if count is not None:
            tally.counts.append((reactor.seconds(), count))
        await task.deferLater(reactor, PAUSE, lambda: None)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def rate(counts: list[tuple[float, float]]) -> float:
    (t0, c0), (t1, c1) = min(counts), max(counts)
    return (c1 - c0) / (t1 - t0)


class CrowdOfScrapers(TurretTestCase):
    timeout = 120

    async def test_hundred_scrapers(self) -> None:
        """
        100 clients scrape a running turret (100 cannons whose
        transactions wait 50 ms: about 1,900 a second, each with 20
        custom timers, so an answer is about 220 KB) at once, all starting together, each
        asking again 0.1 s after its answer, for 4 s (about 1,000
        scrapes a second, 200 MB/s):

        - every scrape is answered in full (status 200, the whole body) or
          refused cleanly: past the 64 connections open at once, a
          connection is closed without an answer (or, the listen backlog
          full, refused by the kernel); nothing else happens;
        - the transactions keep flowing: their rate during the crowd (read
          from the answers) is more than half their rate before it. The
          bound is loose on purpose: the 100 clients run in this test's
          process, on the same 2 shared cores as the turret, and read
          200 MB a second, which the turret writes; the point is that the cannons are not
          stalled, not a measure of the cost (``make bench`` measures
          that: the ``--metrics`` rows). The rate is read from the
          answers' ``oct_transactions_total``, rendered up to 0.25 s
          before (the cache) and the waits of 50 ms (not 5) keep it
          from hanging on a millisecond of scheduling latency; with a
          load of 4 to 6 on the 2 cores it was 85-89% of the rate before;
        - the turret's RSS grows by less than 20 MB (the rendering is
          shared by all, the connections are at most 64).
        """
        port = free_port()
        turret = self.launch(
            "many_timers.py",
            standalone=True,
            args=("--duration", "30", "--metrics", str(port)),
            cannons=100,
        )
        await turret.wait_output("metrics for Prometheus at")
        await task.deferLater(reactor, 2.0, lambda: None)  # the cannons fire
        pid = turret.transport.pid
        assert pid is not None

        before: list[tuple[float, float]] = []
        for _ in range(5):
            answer = await scrape_once(port)
            count = transactions_in(answer)
            assert count is not None, answer[:300]
            before.append((reactor.seconds(), count))
            await task.deferLater(reactor, 0.5, lambda: None)
        rss_before = rss_kib(pid)
        rate_before = rate(before)
        self.assertGreater(rate_before, 50, before)

        tally = Tally()
        cpu_began = cpu_seconds(pid)
        began = time.monotonic()
        until = reactor.seconds() + CROWD_SECONDS
        await gatherResults(
            [Deferred.fromCoroutine(keep_scraping(port, until, tally)) for _ in range(SCRAPERS)]
        )
        took = time.monotonic() - began
        turret_cores = (cpu_seconds(pid) - cpu_began) / took
        rss_after = rss_kib(pid)

        during = rate(tally.counts)
        print(
            f"\n  {tally.answered} answered, {tally.refused} refused (limit {MAX_SCRAPERS}); "
            f"{rate_before:.0f} transactions/s before, {during:.0f}/s during; "
            f"RSS {rss_before} -> {rss_after} KiB; the turret used {turret_cores:.2f} cores"
        )
        self.assertEqual(tally.bad, [], "neither answered nor refused cleanly")
        self.assertGreater(tally.answered, SCRAPERS, (tally.answered, tally.refused))
        self.assertLess(took, CROWD_SECONDS + 15, "the scrapes hung")
        self.assertGreater(during, rate_before * 0.5, (during, rate_before))
        self.assertLess(rss_after - rss_before, 20 * 1024, (rss_before, rss_after))
        self.assertTrue(turret.running, turret.output)
