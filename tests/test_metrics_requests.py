"""
``--metrics`` and per-request statistics: the request names' counters (by
status class) and time histograms, read at scrape time from the run's
request table, counting on across runs, and the same bytes from the fast
renderer as from prometheus_client.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from octtwisted._edge.metrics import TurretCollector, TurretProbes
from octtwisted._firing.lifecycle import State
from octtwisted._stats.scrape import BUCKETS
from tests.test_metrics import FakeRun, scrape


class RequestMetricsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.collector = TurretCollector(
            name="t1", uuid="u1",
            probes=TurretProbes(state=lambda: State.RUNNING, reactor_lag=lambda: 0.0),
        )

    def test_counters_and_histograms(self) -> None:
        """
        ``oct_requests_total`` counts each name's requests by status class
        (``error``: no response; each name shows every usual class, 0
        until it has one); ``oct_request_seconds`` is each name's
        times as a histogram (count, sum, cumulative buckets); a name with
        markup or quotes is escaped by prometheus_client; values recorded
        after the first scrape show in the next.
        """
        run = FakeRun()
        table = run.stats.requests
        for _ in range(3):
            table.record("GET /a", "GET", 0.010, 200, 5)
        table.record("GET /a", "GET", 0.5, 503, 5)
        table.record('<b>"x"</b>', "POST", 2.0, 0, -1, "ConnectionRefusedError")
        self.collector.run_made(run)
        found = scrape(self.collector)
        counts = {(l["name"], l["status"]): v for n, l, v in found["oct_requests"]}
        self.assertEqual({key: v for key, v in counts.items() if v},
                         {("GET /a", "2xx"): 3, ("GET /a", "5xx"): 1, ('<b>"x"</b>', "error"): 1})
        self.assertEqual(set(counts), {(name, label) for name in ("GET /a", '<b>"x"</b>')
                                       for label in ("2xx", "3xx", "4xx", "5xx", "error")})
        samples = found["oct_request_seconds"]
        count = {l["name"]: v for n, l, v in samples if n == "oct_request_seconds_count"}
        total = {l["name"]: v for n, l, v in samples if n == "oct_request_seconds_sum"}
        self.assertEqual(count, {"GET /a": 4, '<b>"x"</b>': 1})
        self.assertAlmostEqual(total["GET /a"], 0.53)
        buckets = {float(l["le"]): v for n, l, v in samples
                   if n == "oct_request_seconds_bucket" and l["name"] == "GET /a"}
        self.assertEqual(len(buckets), len(BUCKETS) + 1)
        below = max(b for b in BUCKETS if b < 0.0099)
        self.assertEqual((buckets[below], buckets[0.01]), (0, 3))
        self.assertEqual(buckets[max(b for b in BUCKETS if b < 0.5)], 3)
        self.assertEqual(buckets[float("inf")], 4)

        table.record("GET /a", "GET", 0.010, 200, 5)
        again = scrape(self.collector)
        counts = {(l["name"], l["status"]): v for n, l, v in again["oct_requests"]}
        self.assertEqual(counts[("GET /a", "2xx")], 4)
        count = {l["name"]: v for n, l, v in again["oct_request_seconds"]
                 if n == "oct_request_seconds_count"}
        self.assertEqual(count["GET /a"], 5)

    def test_across_runs(self) -> None:
        """The request counters keep counting across runs of one process."""
        first = FakeRun()
        first.stats.requests.record("GET /a", "GET", 0.01, 200)
        self.collector.run_made(first)
        scrape(self.collector)
        second = FakeRun()
        second.stats.requests.record("GET /a", "GET", 0.01, 200)
        self.collector.run_made(second)
        found = scrape(self.collector)
        counts = {(l["name"], l["status"]): v for n, l, v in found["oct_requests"] if v}
        self.assertEqual(counts, {("GET /a", "2xx"): 2})

    def test_series_stay_as_classes_come(self) -> None:
        """
        A name's first 5xx, 4xx, 3xx or failure without response does not
        change which series there are (so a scrape needs no new template,
        and ``rate()`` over a class has no gap); a status class beyond the
        usual ones (``1xx``, ``6xx``) joins them for its name.
        """
        run = FakeRun()
        table = run.stats.requests
        table.record("GET /a", "GET", 0.01, 200)
        self.collector.run_made(run)
        before = self.collector.read().shape
        table.record("GET /a", "GET", 0.01, 503)
        table.record("GET /a", "GET", 0.01, 404)
        table.record("GET /a", "GET", 0.01, 302)
        table.record("GET /a", "GET", 0.01, 0, -1, "ConnectionRefusedError")
        self.assertEqual(self.collector.read().shape, before)
        table.record("GET /a", "GET", 0.01, 601)
        found = scrape(self.collector)
        counts = {l["status"]: v for n, l, v in found["oct_requests"]}
        self.assertEqual(counts, {"2xx": 1, "3xx": 1, "4xx": 1, "5xx": 1, "6xx": 1, "error": 1})

    def test_no_requests_no_families(self) -> None:
        """Without requests, no request metric is shown."""
        self.collector.run_made(FakeRun())
        found = scrape(self.collector)
        self.assertNotIn("oct_requests", found)
        self.assertNotIn("oct_request_seconds", found)
