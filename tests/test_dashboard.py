"""
The Grafana dashboard (``docs/grafana-dashboard.json``): every metric its
panels and variables query is one the turret serves (with the labels
they group and filter by), every panel uses the dashboard's data source
and turret filter, the panels do not overlap, the request failures'
status filter keeps exactly the failing classes, and (with ``promtool``)
every query is valid PromQL.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from octtwisted._edge.metrics import SinkProbes, TurretCollector, TurretProbes
from octtwisted._firing.lifecycle import State
from octtwisted._stats.starts import StartStats
from tests.test_metrics import FakeResult, FakeRun, scrape

DASHBOARD = Path(__file__).parent.parent / "docs" / "grafana-dashboard.json"

#: What the variables stand for, for a query checked outside Grafana.
VARIABLES = {"$turret": ".*", "$name": ".*", "$__rate_interval": "1m"}


def dashboard() -> Any:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def queries(board: Any) -> list[tuple[str, str]]:
    """(where, query) of every panel's target and every query variable."""
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", target["expr"]))
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append((f"variable {variable['name']!r}", query if isinstance(query, str) else query["query"]))
    return found


def served() -> dict[str, set[str]]:
    """
    Every sample name a turret serves (a scrape of a collector that has
    every kind of figure: transactions, custom timers, open-model starts,
    the result sink's counts, requests with and without a response), with
    the label names of its samples.
    """
    collector = TurretCollector(
        name="t1", uuid="u1",
        probes=TurretProbes(state=lambda: State.RUNNING, reactor_lag=lambda: 0.01),
    )
    run = FakeRun(starts=StartStats(), active=2)
    run.stats.record(FakeResult(0.1, custom_timers={"login": 0.05}))
    run.stats.record(FakeResult(0.2, error="boom"))
    assert run.starts is not None
    run.starts.plan()
    run.starts.start(0.002)
    run.starts.drop()
    table = run.stats.requests
    table.record("GET /a", "GET", 0.01, 200, 5)
    table.record("GET /b", "GET", 0.01, 302, 0)
    table.record("GET /c", "GET", 0.01, 404, 0)
    table.record("GET /d", "GET", 0.01, 503, 0)
    table.record("GET /e", "GET", 0.01, 0, -1, "ConnectionRefusedError")
    collector.run_made(run)
    collector.sink_probes(SinkProbes(pending=lambda: 1, sent=lambda: 2, dropped=lambda: 3))
    samples: dict[str, set[str]] = {}
    for family in scrape(collector).values():
        for name, labels, _ in family:
            samples.setdefault(name, set()).update(labels)
    return samples


def metric_names(query: str) -> list[str]:
    return re.findall(r"\boct_[a-z0-9_]+\b", query)


class DashboardTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.board = dashboard()
        self.served = served()

    def test_queries_name_served_metrics(self) -> None:
        """
        Every metric a panel or variable queries is served by the turret
        (the request metrics included), and every label a query groups
        by, filters on or reads is one of that metric's labels.
        """
        self.assertIn("oct_requests_total", self.served)
        self.assertIn("oct_request_seconds_bucket", self.served)
        for where, query in queries(self.board):
            names = metric_names(query)
            self.assertTrue(names, (where, query))
            for name in names:
                self.assertIn(name, self.served, (where, query))
            labels = set().union(*(self.served[name] for name in names))
            used = set()
            for group in re.findall(r"\bby \(([^)]*)\)", query):
                used.update(label.strip() for label in group.split(","))
            used.update(re.findall(r"[{,]\s*([a-z_]+)\s*(?:=~|!~|!=|=)", query))
            used.update(re.findall(r"label_values\([^,]*,\s*([a-z_]+)\)", query))
            self.assertLessEqual(used, labels, (where, query))

    def test_request_panels(self) -> None:
        """
        The dashboard charts the requests per second by name, the failed
        requests by name and status class, and each name's p95 from
        ``oct_request_seconds``' buckets with ``histogram_quantile``; each
        follows the turret and request name variables.
        """
        exprs = {panel["title"]: [t["expr"] for t in panel["targets"]] for panel in self.board["panels"]}
        by_name = exprs["Requests per second by name"]
        failed = exprs["Failed requests per second by name and status class"]
        p95 = exprs["Request time by name (p95)"]
        self.assertEqual(len(by_name + failed + p95), 3)
        self.assertRegex(by_name[0], r"^sum by \(turret, name\) \(rate\(oct_requests_total\{")
        self.assertRegex(failed[0], r"^sum by \(turret, name, status\) \(rate\(oct_requests_total\{")
        self.assertRegex(
            p95[0],
            r"^histogram_quantile\(0\.95, sum by \(le, turret, name\) \(rate\(oct_request_seconds_bucket\{",
        )
        for expr in by_name + failed + p95:
            self.assertIn('name=~"$name"', expr)
        names = [v for v in self.board["templating"]["list"] if v["name"] == "name"]
        self.assertEqual(len(names), 1)
        self.assertEqual(names[0]["allValue"], ".*")

    def test_failure_filter_keeps_failing_classes(self) -> None:
        """
        The failed requests panel's status filter keeps exactly the status
        classes the turret serves for failed requests (4xx, 5xx, error: no
        response), not 2xx or 3xx.
        """
        collector = TurretCollector(
            name="t1", uuid="u1",
            probes=TurretProbes(state=lambda: State.RUNNING, reactor_lag=lambda: 0.0),
        )
        run = FakeRun()
        for status in (200, 302, 404, 503, 0):
            run.stats.requests.record(f"GET /{status}", "GET", 0.01, status, -1,
                                      "ConnectionRefusedError" if status == 0 else None)
        collector.run_made(run)
        classes = {labels["status"]: labels["name"] for _, labels, value in scrape(collector)["oct_requests"] if value}
        self.assertEqual(set(classes), {"2xx", "3xx", "4xx", "5xx", "error"})
        failing = {status for status, name in classes.items() if name in ("GET /404", "GET /503", "GET /0")}
        panel = next(p for p in self.board["panels"] if p["title"].startswith("Failed requests"))
        found = re.search(r'status=~"([^"]*)"', panel["targets"][0]["expr"])
        assert found is not None
        kept = {status for status in classes if re.fullmatch(found[1], status)}
        self.assertEqual(kept, failing)

    def test_layout(self) -> None:
        """
        Panel ids are unique; every panel and query variable uses the
        ``datasource`` variable; every panel's queries filter on the
        ``turret`` variable; no two panels overlap on the grid.
        """
        source = {"type": "prometheus", "uid": "${datasource}"}
        panels = self.board["panels"]
        ids = [panel["id"] for panel in panels]
        self.assertEqual(len(ids), len(set(ids)))
        for panel in panels:
            self.assertEqual(panel["datasource"], source, panel["title"])
            for target in panel["targets"]:
                self.assertIn('turret=~"$turret"', target["expr"], panel["title"])
        for variable in self.board["templating"]["list"]:
            if variable["type"] == "query":
                self.assertEqual(variable["datasource"], source, variable["name"])
        cells: dict[tuple[int, int], str] = {}
        for panel in panels:
            grid = panel["gridPos"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    self.assertNotIn((x, y), cells, (panel["title"], cells.get((x, y))))
                    cells[(x, y)] = panel["title"]
            self.assertLessEqual(grid["x"] + grid["w"], 24, panel["title"])

    def test_promql_valid(self) -> None:
        """
        Every panel's query, its variables replaced, is valid PromQL:
        ``promtool check rules`` accepts each as a recording rule.
        """
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("no promtool on the PATH (Debian's prometheus package has it)")
        rules = []
        for i, (where, query) in enumerate(queries(self.board)):
            if query.startswith("label_values("):
                continue
            for variable, value in VARIABLES.items():
                query = query.replace(variable, value)
            rules.append({"record": f"dashboard:query_{i}", "expr": query})
        folder = Path(self.mktemp())
        folder.mkdir(parents=True)
        path = folder / "rules.yml"
        path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
        done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn(f"SUCCESS: {len(rules)} rules found", done.stdout + done.stderr)
