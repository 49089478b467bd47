"""
``--metrics`` without a Prometheus: the scrape's figures from in-memory
RunStats, the collector's output, the address and port checks at start,
and the endpoint's behaviour with a scraper that never reads.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import attrs
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core.messages import Result
from octtwisted._edge.metrics import (
    MetricsAddressError,
    MetricsSettings,
    SinkProbes,
    TurretCollector,
    TurretProbes,
    parse_metrics_address,
    port_problem,
)
from octtwisted._edge.metrics_web import (
    FRESH_FOR,
    SEND_LIMIT,
    ScrapeCache,
    TemplateRenderer,
    _formatted,
    metrics_site,
    registry_renderer,
)
from octtwisted._edge.options import Options
from octtwisted._firing.lifecycle import State
from octtwisted._stats.scrape import BUCKETS, read_run
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import RunStats
from tests.helpers import NO_HQ, write_config


@attrs.frozen
class FakeResult:
    scriptrun_time: float
    error: str = ""
    custom_timers: dict[str, float] = attrs.field(factory=dict)


@attrs.define
class FakeRun:
    stats: RunStats = attrs.field(factory=RunStats)
    starts: StartStats | None = None
    active: int = 0

    def active_cannons(self) -> int:
        return self.active


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile: linear inside the bucket."""
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def scrape(collector: TurretCollector) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """The scrape as the endpoint writes it (checked against prometheus_client's own)."""
    rendered = TemplateRenderer(collector)()
    if rendered != registry_renderer(collector)():
        raise AssertionError("TemplateRenderer and prometheus_client differ")
    text = rendered.decode()
    found: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        found[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return found


class ScrapeFiguresTests(SynchronousTestCase):
    def test_buckets_fine_enough(self) -> None:
        """
        The bounds go from 1 ms to 60 s, each at most 9.65% above the one
        before: histogram_quantile's interpolation stays within 10%.
        """
        self.assertEqual(BUCKETS[0], 0.001)
        self.assertEqual(BUCKETS[-1], 60.0)
        for low, high in zip(BUCKETS, BUCKETS[1:]):
            self.assertLess(high / low, 1.097)

    def test_cumulative_counts_and_sum(self) -> None:
        """
        Values recorded in a RunStats show as cumulative counts at the
        bounds, their count and sum; a value above 60 s only in the count.
        """
        stats = RunStats()
        for seconds in (0.0005, 0.002, 0.002, 0.5, 120.0):
            stats.record(FakeResult(seconds))
        figures = read_run(stats, None).timers["scriptrun_time"]
        self.assertEqual(figures.count, 5)
        self.assertAlmostEqual(figures.total, 120.5045, places=3)
        at = dict(zip(BUCKETS, figures.buckets))
        self.assertEqual(at[0.001], 1)
        self.assertEqual(figures.buckets[-1], 4)
        self.assertEqual(max(c for b, c in at.items() if b < 0.5), 3)

    def test_quantile_within_ten_percent(self) -> None:
        """
        For spread-out times (1 ms to 10 s), the histogram_quantile of the
        buckets is within 10% of the HDR percentile the summary gives.
        """
        stats = RunStats()
        for i in range(5000):
            stats.record(FakeResult(0.001 * 1.0017 ** (i % 4000) * (1 + i % 7)))
        figures = read_run(stats, None).timers["scriptrun_time"]
        buckets = [*zip(BUCKETS, map(float, figures.buckets)), (float("inf"), figures.count)]
        summary = stats.summary(duration=1, cannons=1, cannons_reached=1).scriptrun_time
        assert summary is not None
        for q, hdr in ((0.5, summary.p50), (0.95, summary.p95), (0.99, summary.p99)):
            self.assertLess(abs(quantile(q, buckets) - hdr) / hdr, 0.10, q)

    def test_scrape_takes_nothing(self) -> None:
        """
        Reading the figures takes nothing from them: the progress interval
        and the summary are the same as without a scrape.
        """
        stats = RunStats()
        for i in range(100):
            stats.record(FakeResult(0.01 * (i + 1), custom_timers={"t": 0.1}))
        read_run(stats, None)
        interval = stats.take_interval(1.0)
        self.assertEqual(interval.transactions, 100)
        read_run(stats, None)
        self.assertEqual(read_run(stats, None).timers["scriptrun_time"].count, 100)
        self.assertEqual(stats.summary(duration=1, cannons=1, cannons_reached=1).transactions, 100)


class CollectorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.state = State.READY
        self.collector = TurretCollector(
            name="t1", uuid="u1",
            probes=TurretProbes(state=lambda: self.state, reactor_lag=lambda: 0.25),
        )

    def test_names_and_labels(self) -> None:
        """
        Every metric is an ``oct_`` one labelled with the turret's name and
        uuid; transactions are split by outcome, custom timers by timer;
        the start metrics appear only for the open model, the sink's only
        once told where to read them.
        """
        run = FakeRun(active=3)
        run.stats.record(FakeResult(0.01, custom_timers={"login": 0.002}))
        run.stats.record(FakeResult(0.02, error="boom"))
        self.collector.run_made(run)
        found = scrape(self.collector)
        self.assertNotIn("oct_starts_dropped", found)
        self.assertNotIn("oct_results_sent", found)
        for samples in found.values():
            for _, labels, _ in samples:
                self.assertEqual((labels["turret"], labels["uuid"]), ("t1", "u1"))
        outcomes = {l["outcome"]: v for n, l, v in found["oct_transactions"]}
        self.assertEqual(outcomes, {"ok": 1, "error": 1})
        self.assertEqual(found["oct_active_cannons"][0][2], 3)
        self.assertEqual(found["oct_reactor_lag_seconds"][0][2], 0.25)
        timers = {l["timer"] for n, l, v in found["oct_custom_timer_seconds"]}
        self.assertEqual(timers, {"login"})

        open_run = FakeRun(starts=StartStats())
        assert open_run.starts is not None
        open_run.starts.plan()
        open_run.starts.drop()
        self.collector.run_made(open_run)
        self.collector.sink_probes(SinkProbes(pending=lambda: 4, sent=lambda: 9, dropped=lambda: 1))
        found = scrape(self.collector)
        self.assertEqual(found["oct_starts_dropped"][0][2], 1)
        self.assertEqual(found["oct_starts_planned"][0][2], 1)
        self.assertEqual(found["oct_results_waiting"][0][2], 4)
        self.assertEqual(found["oct_results_sent"][0][2], 9)

    def test_state(self) -> None:
        """
        ``oct_turret_state`` is 1 for the state shown (restarting shows as
        stopping) and 0 for the others.
        """
        for state, shown in ((State.READY, "ready"), (State.RUNNING, "running"),
                             (State.RESTARTING, "stopping")):
            self.state = state
            values = {l["state"]: v for n, l, v in scrape(self.collector)["oct_turret_state"]}
            self.assertEqual(values, {s: float(s == shown) for s in ("ready", "running", "stopping")})

    def test_counters_keep_counting_across_runs(self) -> None:
        """
        A second run's figures add to the first's (counters and
        histograms), even with no scrape between the runs.
        """
        for _ in range(2):
            run = FakeRun()
            for _ in range(3):
                run.stats.record(FakeResult(0.01))
            self.collector.run_made(run)
        found = scrape(self.collector)
        outcomes = {l["outcome"]: v for n, l, v in found["oct_transactions"]}
        self.assertEqual(outcomes["ok"], 6)
        counts = [v for n, l, v in found["oct_scriptrun_time_seconds"] if n.endswith("_count")]
        self.assertEqual(counts, [6])

    def test_cache(self) -> None:
        """
        Scrapes within FRESH_FOR seconds share one rendering (a task.Clock
        drives the time).
        """
        clock = task.Clock()
        cache = ScrapeCache(TemplateRenderer(self.collector), clock)
        for _ in range(100):
            cache()
        self.assertEqual(cache.renders, 1)
        clock.advance(FRESH_FOR)
        cache()
        self.assertEqual(cache.renders, 2)


class TemplateRendererTests(SynchronousTestCase):
    def test_same_bytes_as_prometheus_client(self) -> None:
        """
        Scrape after scrape, as the figures change and their shape too (a
        new timer, odd timer names, the open model's starts, the sink's
        probes), TemplateRenderer writes byte for byte what
        prometheus_client's ``generate_latest`` writes; prometheus_client
        renders the series again only when the shape changes.
        """
        collector = TurretCollector(
            name='t "1"', uuid="u\\1",
            probes=TurretProbes(state=lambda: State.RUNNING, reactor_lag=lambda: 1e-7),
        )
        fast = TemplateRenderer(collector)
        full = registry_renderer(collector)
        self.assertEqual(fast(), full())
        run = FakeRun(active=2)
        collector.run_made(run)
        self.assertEqual(fast(), full())
        for i in range(1, 200):
            run.stats.record(FakeResult(0.0007 * i ** 1.7, custom_timers={"a": 0.01 * i}))
            self.assertEqual(fast(), full())
        self.assertEqual(fast.templates, 3)
        run.stats.record(FakeResult(3.0, custom_timers={'odd "name"\n\\ é': 2e6, " ": 0.0}))
        self.assertEqual(fast(), full())
        self.assertEqual(fast.templates, 4)
        open_run = FakeRun(starts=StartStats())
        assert open_run.starts is not None
        open_run.starts.plan()
        collector.run_made(open_run)
        collector.sink_probes(SinkProbes(pending=lambda: 4, sent=lambda: 12_345_678, dropped=None))
        self.assertEqual(fast(), full())
        self.assertEqual(fast.templates, 5)

    def test_values_formatted_as_prometheus_client_does(self) -> None:
        """
        The values of a scrape, whose ints are formatted once per scrape,
        are written as ``floatToGoString`` writes each: ints small and past
        Go's exponent threshold, repeated, and floats with the same value
        as an int, zero and minus zero, NaN and the infinities.
        """
        from prometheus_client.utils import floatToGoString

        values = [0, 0, 1, 1, 12, 1_000_000, 10_000_000, 10_000_000, 123_456_789, 2**70, 0.0, -0.0, -0.0,
                  1.0, 12.0, 1e-7, 0.25, 1e7, float("nan"), float("nan"), float("inf"), float("-inf"), 0]
        self.assertEqual(_formatted(values), [floatToGoString(v) for v in values])

    def test_cumulative_counts_at_the_bounds(self) -> None:
        """
        Each bucket counts the values up to its bound, as counted one by
        one (values 0.2% or more away from a bound: the HDR histograms
        keep them within 0.1%).
        """
        values = [0.0005, 0.0011, 0.0011, 0.05, 0.0505, 0.9, 1.0, 7.0, 59.0, 61.0, 3000.0]
        values += [0.001 * 1.013 ** k for k in range(900)]
        values = [v for v in values if all(abs(v - b) / b >= 0.002 for b in BUCKETS)]
        stats = RunStats()
        for value in values:
            stats.record(FakeResult(value))
        figures = read_run(stats, None).timers["scriptrun_time"]
        self.assertEqual(figures.count, len(values))
        for bound, count in zip(BUCKETS, figures.buckets):
            self.assertEqual(count, sum(1 for v in values if v <= bound), bound)


class AddressTests(SynchronousTestCase):
    def test_parse(self) -> None:
        """
        A bare port binds 127.0.0.1; HOST:PORT and [IPv6]:PORT are read;
        anything else is refused with the reason.
        """
        self.assertEqual(parse_metrics_address("9100"), MetricsSettings("127.0.0.1", 9100))
        self.assertEqual(parse_metrics_address(9100), MetricsSettings("127.0.0.1", 9100))
        self.assertEqual(parse_metrics_address("0.0.0.0:9100"), MetricsSettings("0.0.0.0", 9100))
        self.assertEqual(parse_metrics_address("[::1]:9100"), MetricsSettings("::1", 9100))
        for bad in ("", "x", "host:", ":9100", "70000", "0", True, 1.5, "a:b"):
            self.assertRaises(MetricsAddressError, parse_metrics_address, bad)

    def test_port_in_use(self) -> None:
        """
        A port in use is found at start: the options end the turret with
        one line and exit status 2, before anything is started; the
        config's ``metrics`` key is checked the same way.
        """
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            self.assertIn("cannot listen", port_problem(MetricsSettings("127.0.0.1", port)) or "")
            folder = Path(self.mktemp())
            config = write_config(folder, **NO_HQ)
            with self.assertRaises(SystemExit) as caught:
                Options().parseOptions(["-c", str(config), "--standalone", "--metrics", str(port)])
            self.assertEqual(caught.exception.code, 2)
            config = write_config(folder, metrics=port, **NO_HQ)
            with self.assertRaises(SystemExit) as caught:
                Options().parseOptions(["-c", str(config), "--standalone"])
            self.assertEqual(caught.exception.code, 2)

    def test_cli_wins(self) -> None:
        """--metrics wins over the config's ``metrics``; a worker serves none."""
        folder = Path(self.mktemp())
        config = write_config(folder, metrics="127.0.0.1:1", **NO_HQ)
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        options = Options()
        options.parseOptions(["-c", str(config), "--standalone", "--metrics", str(port)])
        self.assertEqual(options.metrics, MetricsSettings("127.0.0.1", port))
        worker = Options()
        worker.parseOptions(["-c", str(config), "--standalone", "--worker", "0/1"])
        self.assertIsNone(worker.metrics)


class EndpointTests(TestCase):
    def listen(self, body: bytes = b"x" * 200_000) -> tuple[int, list[int]]:
        renders: list[int] = []

        def render() -> bytes:
            renders.append(1)
            return body

        self.factory = metrics_site(render)
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port, renders

    async def test_never_reading_scraper(self) -> None:
        """
        A scraper that sends 2000 requests on one connection and never
        reads its answers: once its buffers are full the endpoint
        disconnects it (a few renders, not 2000: memory stays bounded),
        and the reactor keeps its pace meanwhile.
        """
        port, renders = self.listen()
        client = socket.create_connection(("127.0.0.1", port))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.addCleanup(client.close)
        client.setblocking(False)
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
        try:
            client.send(request)
        except BlockingIOError:
            pass
        ticks: list[float] = []
        loop = task.LoopingCall(lambda: ticks.append(time.monotonic()))
        loop.start(0.01)
        await task.deferLater(reactor, 2.0, lambda: None)
        loop.stop()
        self.assertLess(len(renders), 100)
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        self.assertLess(max(gaps), 0.2)

    async def test_answer_in_one_write(self) -> None:
        """
        A scraper's connection hands the kernel its whole answer at once
        (its transport's ``SEND_LIMIT``; Twisted's 128 KiB would take a
        turn of the reactor per 128 KiB of a 4 MB answer), and the answer
        arrives whole.
        """
        body = b"oct_x 1\n" * 500_000  # 4 MB
        port, _ = self.listen(body)
        client = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(client.close)
        client.setblocking(False)
        client.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = bytearray()
        limits: list[int] = []
        while not received.endswith(body):
            await task.deferLater(reactor, 0.001, lambda: None)
            limits = limits or [conn.transport.SEND_LIMIT for conn in self.factory.protocols]
            try:
                chunk = client.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                break
            received += chunk
        self.assertTrue(received.endswith(body))
        self.assertEqual(SEND_LIMIT, 8 * 1024 * 1024)
        self.assertEqual(limits, [SEND_LIMIT])

    async def test_paths_and_methods(self) -> None:
        """
        GET and HEAD /metrics answer 200 in the text format; another path
        is a 404, another method a 405.
        """
        import treq
        from twisted.web.client import HTTPConnectionPool

        port, _ = self.listen(b"oct_x 1\n")
        pool = HTTPConnectionPool(reactor, persistent=False)
        base = f"http://127.0.0.1:{port}"
        response = await treq.get(f"{base}/metrics", pool=pool)
        self.assertEqual((response.code, await response.content()), (200, b"oct_x 1\n"))
        self.assertIn(b"text/plain", response.headers.getRawHeaders(b"content-type")[0])
        response = await treq.head(f"{base}/metrics", pool=pool)
        self.assertEqual(response.code, 200)
        for path in ("/", "/other", "/metrics/x"):
            response = await treq.get(base + path, pool=pool)
            await response.content()
            self.assertEqual(response.code, 404, path)
        response = await treq.post(f"{base}/metrics", data=b"", pool=pool)
        await response.content()
        self.assertEqual(response.code, 405)
