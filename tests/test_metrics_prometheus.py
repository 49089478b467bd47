"""
``--metrics`` checked by the real thing: a real Prometheus (Debian's
``prometheus`` package; ``make test`` installs it when it may) scrapes a
real ``twistd oct-turret`` every second, and its HTTP API is asked what it
saw. Skipped, saying why, when there is no ``prometheus`` on the PATH.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import treq
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.web.client import HTTPConnectionPool

from octtwisted._stats.scrape import BUCKETS_PER_DECADE
from tests.helpers import TurretTestCase, _Collector

PROMETHEUS = shutil.which("prometheus")

#: histogram_quantile's documented precision (docs/metrics.rst).
QUANTILE_PRECISION = 0.10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sleep(seconds: float) -> Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


class Prometheus:
    """A real Prometheus on 127.0.0.1, scraping ``target`` every second."""

    def __init__(self, folder: Path, target: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: oct-turret\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self.port = free_port()
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.collector = _Collector()
        assert PROMETHEUS is not None
        self.transport = reactor.spawnProcess(
            self.collector, PROMETHEUS,
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            env=None, path=str(folder),
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 30.0) -> None:
        for _ in range(int(timeout * 5)):
            try:
                response = await treq.get(f"{self.url}/-/ready", pool=self.pool)
                await response.content()
                if response.code == 200:
                    return
            except Exception:
                pass
            await sleep(0.2)
        raise AssertionError("Prometheus was not ready:\n" + self.collector.output.decode())

    async def scraping(self) -> None:
        """
        Prometheus scrapes the target (it applies new targets every 5 s):
        its ``up`` is there, 0 while the turret is not listening yet.
        """
        await self.until("count(up)", 1, timeout=20)

    async def query(self, expression: str) -> list[dict[str, Any]]:
        response = await treq.get(
            f"{self.url}/api/v1/query", params={"query": expression}, pool=self.pool
        )
        body = json.loads(await response.content())
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def value(self, expression: str) -> float | None:
        result = await self.query(expression)
        return float(result[0]["value"][1]) if result else None

    async def until(self, expression: str, wanted: float, timeout: float = 15.0) -> None:
        seen = None
        for _ in range(int(timeout * 4)):
            seen = await self.value(expression)
            if seen == wanted:
                return
            await sleep(0.25)
        raise AssertionError(f"{expression} stayed {seen}, not {wanted}")

    def stop(self) -> Deferred[Any]:
        if self.collector.ended.called:
            return self.collector.ended
        self.transport.signalProcess("TERM")
        return self.collector.ended


class PrometheusScrapesTheTurret(TurretTestCase):
    timeout = 120

    def setUp(self) -> None:
        if PROMETHEUS is None:
            self.skipTest(
                "no prometheus on the PATH (make test installs Debian's prometheus as "
                "root; else apt-get install prometheus)"
            )

    def prometheus(self, port: int) -> Prometheus:
        server = Prometheus(Path(self.mktemp()).absolute(), f"127.0.0.1:{port}")
        self.addCleanup(server.stop)
        return server

    async def test_standalone_run_as_prometheus_sees_it(self) -> None:
        """
        A 20 s standalone run of the open model, scraped every second: the
        ``increase()`` of the transactions over the run is within 5% of the
        summary's count, ``histogram_quantile(0.95, ...)`` within the
        documented 10% of the summary's p95, and the dropped starts (all
        in the middle of the run, when the rate is above what 2 cannons
        can start: the last scrapes see the final count) equal the
        summary's.
        """
        port = free_port()
        server = self.prometheus(port)
        await server.ready()
        await server.scraping()
        turret = self.launch(
            standalone=True,
            args=("--duration", "20", "--metrics", str(port), "--summary-json", "s.json"),
            arrival_rate=60,
            stages=[
                {"duration": 8, "target": 60},
                {"duration": 1, "target": 400},
                {"duration": 2, "target": 400},
                {"duration": 1, "target": 60},
                {"duration": 8, "target": 60},
            ],
        )
        self.assertEqual(await turret.wait_exit(timeout=60), 0, turret.output)
        summary = json.loads((turret.folder / "s.json").read_text())
        self.assertGreater(summary["starts"]["dropped"], 0, "no start was dropped")

        increase = await server.value("sum(increase(oct_transactions_total[5m]))")
        assert increase is not None
        self.assertLess(abs(increase - summary["transactions"]) / summary["transactions"], 0.05,
                        (increase, summary["transactions"]))

        p95 = await server.value(
            "histogram_quantile(0.95, last_over_time(oct_scriptrun_time_seconds_bucket[5m]))"
        )
        assert p95 is not None
        expected = summary["scriptrun_time"]["p95"]
        self.assertLess(abs(p95 - expected) / expected, QUANTILE_PRECISION, (p95, expected))
        self.assertLess(10 ** (1 / BUCKETS_PER_DECADE) - 1 + 0.001, QUANTILE_PRECISION)

        dropped = await server.value("last_over_time(oct_starts_dropped_total[5m])")
        self.assertEqual(dropped, summary["starts"]["dropped"])

    async def test_state_follows_the_orders(self) -> None:
        """
        Obeying a FakeHQ: Prometheus sees the turret ready, running after
        ``start``, and ready again after ``stop``; the transactions
        counter keeps counting across the second run.
        """
        hq = self.hq = self.start_hq()
        port = free_port()
        server = self.prometheus(port)
        await server.ready()
        await server.scraping()
        turret = self.launch(args=("--metrics", str(port)))
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        state = 'oct_turret_state{state="%s"}'
        await server.until(state % "ready", 1)

        hq.publish("start", "open fire")
        await hq.wait_for_status("Running", turret.uuid)
        await server.until(state % "running", 1)
        mark = len(hq.statuses)
        hq.publish("stop", "stop")
        await hq.wait_for_status("ready", turret.uuid, after=mark)
        await server.until(state % "ready", 1)
        await server.until(state % "running", 0)
        first = await server.value('oct_transactions_total{outcome="ok"}')
        assert first is not None and first > 0

        mark = len(hq.statuses)
        hq.publish("start", "open fire")
        await hq.wait_for_status("Running", turret.uuid, after=mark)
        await sleep(2.5)
        second = await server.value('oct_transactions_total{outcome="ok"}')
        assert second is not None
        self.assertGreater(second, first)
        resets = await server.value("resets(oct_transactions_total[5m])")
        self.assertEqual(resets, 0)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)
