"""
Per-request statistics end to end, through the real ``twistd oct-turret``
process: a standalone run against a target in the test process whose
summary (text and ``--summary-json``) counts exactly the requests the
target saw, by name, with a threshold on a request name; and a run
obeying a FakeHQ whose result frames carry one timer per request name
(none with ``request_timers: false``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from tests.helpers import TurretTestCase, serve_quietly

SCRIPT = "per_request.py"


class Target(Resource):
    """
    /fast (200, 4 bytes), /slow (200 after 0.2 s), /error (500); counts
    every request as it arrives, by name as the turret should name it.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: Counter[str] = Counter()
        self.pending: list[Any] = []

    def cancel_pending(self) -> None:
        for call in self.pending:
            if call.active():
                call.cancel()

    def render_GET(self, request: Request) -> Any:
        path = request.path.decode()
        if path == "/fast":
            via = b"treq" if b"via=treq" in request.uri else b"hand" if b"via=hand" in request.uri else b""
            self.seen[{b"treq": "treq fast", b"hand": "hand fast"}.get(via, "GET /fast")] += 1
            return b"fast"
        if path == "/slow":
            self.seen["slow page"] += 1

            def answer() -> None:
                if not request.finished and not request._disconnected:
                    request.write(b"slow")
                    request.finish()

            self.pending = [call for call in self.pending if call.active()]
            self.pending.append(reactor.callLater(0.2, answer))
            return NOT_DONE_YET
        self.seen["GET /error"] += 1
        request.setResponseCode(500)
        return b"broken"


class RequestsEndToEnd(TurretTestCase):
    timeout = 120

    def serve(self) -> tuple[Target, str]:
        target = Target()
        url = serve_quietly(self, target)
        self.addCleanup(target.cancel_pending)
        return target, url

    async def test_standalone_counts_match_target(self) -> None:
        """
        A 3 s standalone run (2 cannons) counts, per name, exactly the
        requests the target saw: requests, failures (every /error, as
        ``HTTP 500``), status codes; the transactions themselves pass; the
        text summary shows both tables, the report names every request and
        charts the p95 of each (4 names: all among the busiest); a failing
        request threshold exits 99, a passing one passes.
        """
        target, base = self.serve()
        turret = self.launch(
            SCRIPT, standalone=True, target_base=base,
            args=("--duration", "3", "--summary-json", "summary.json", "--report", "report.html"),
            thresholds={
                "requests{name:GET /error}": ["fail_rate < 0.5"],
                "requests{name:slow page}": ["p50 > 150ms", "count > 2"],
            },
        )
        self.assertEqual(await turret.wait_exit(60), 99, turret.output)
        summary = json.loads((turret.folder / "summary.json").read_text())
        self.assertEqual(summary["errors"], 0)
        rows = {row["name"]: row for row in summary["requests"]}
        self.assertEqual(set(rows), set(target.seen))
        for name, count in target.seen.items():
            self.assertEqual(rows[name]["requests"], count, name)
        self.assertGreater(target.seen["slow page"], 2)
        self.assertEqual(rows["GET /error"]["failures"], target.seen["GET /error"])
        self.assertEqual(rows["GET /error"]["statuses"], {"500": target.seen["GET /error"]})
        self.assertEqual(rows["GET /fast"]["statuses"], {"200": target.seen["GET /fast"]})
        self.assertEqual(rows["GET /fast"]["average_bytes"], 4.0)
        self.assertEqual(rows["treq fast"]["method"], "GET")
        self.assertGreaterEqual(rows["slow page"]["time"]["p50"], 0.2)
        for name in ("GET /fast", "slow page", "treq fast"):
            self.assertEqual(rows[name]["failures"], 0, name)
        self.assertEqual(
            summary["request_failures"],
            [{"method": "GET", "name": "GET /error", "reason": "HTTP 500",
              "count": target.seen["GET /error"]}],
        )
        verdicts = [(t["metric"], t["expression"], t["passed"]) for t in summary["thresholds"]]
        self.assertEqual(verdicts, [
            ("requests{name:GET /error}", "fail_rate < 0.5", False),
            ("requests{name:slow page}", "p50 > 150ms", True),
            ("requests{name:slow page}", "count > 2", True),
        ])
        page = (turret.folder / "report.html").read_text()
        found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
        assert found is not None
        charted = json.loads(found[1])["requests"]
        self.assertEqual(set(charted["names"]), set(target.seen))
        for name in target.seen:
            self.assertIn(name, page)
        out = turret.output
        self.assertIn("Requests (times in ms)", out)
        self.assertIn("Request failures", out)
        self.assertRegex(out, r"GET\s+GET /error\s+" + f"{target.seen['GET /error']:,}")
        self.assertNotIn("Traceback", out)

    async def test_hq_results_carry_request_timers(self) -> None:
        """
        Obeying a FakeHQ, each result's custom_timers has one timer per
        request name of its transaction, each at least as long as the
        target made it wait (slow page: 0.2 s).
        """
        hq = self.start_hq()
        target, base = self.serve()
        turret = self.launch(SCRIPT, hq=hq, target_base=base)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "go")
        results = await hq.wait_for_results(6)
        hq.publish("stop", "done")
        for result in results:
            self.assertEqual(result["error"], "")
            timers = result["custom_timers"]
            self.assertEqual(set(timers), {"GET /fast", "slow page", "GET /error", "treq fast"})
            self.assertGreaterEqual(timers["slow page"], 0.2)

    async def test_hq_request_timers_off(self) -> None:
        """
        With ``request_timers: false`` the results carry no request
        timers (the script has no timer of its own).
        """
        hq = self.start_hq()
        target, base = self.serve()
        turret = self.launch(SCRIPT, hq=hq, target_base=base, request_timers=False)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "go")
        results = await hq.wait_for_results(4)
        hq.publish("stop", "done")
        self.assertEqual([result["custom_timers"] for result in results], [{}] * len(results))
        self.assertGreater(sum(target.seen.values()), 0)

    async def test_processes_merge_tables(self) -> None:
        """
        With ``--processes 2``, the workers' tables reach the summary
        through their parts: per name, exactly the requests the target
        saw, statuses and failures included.
        """
        target, base = self.serve()
        turret = self.launch(
            SCRIPT, standalone=True, target_base=base, cannons=4,
            args=("--duration", "3", "--processes", "2", "--summary-json", "summary.json"),
        )
        self.assertEqual(await turret.wait_exit(60), 0, turret.output)
        summary = json.loads((turret.folder / "summary.json").read_text())
        self.assertEqual(summary["processes"], 2)
        rows = {row["name"]: row for row in summary["requests"]}
        self.assertEqual({name: row["requests"] for name, row in rows.items()}, dict(target.seen))
        self.assertEqual(rows["GET /error"]["statuses"], {"500": target.seen["GET /error"]})
        self.assertEqual(rows["GET /error"]["failures"], target.seen["GET /error"])
        self.assertEqual(summary["custom_timers"], {})

    async def test_blocking_script_records_by_hand(self) -> None:
        """
        A classic blocking script (its steps in threads) that counts its
        urllib requests with record_request (from the cannons' threads):
        the summary has exactly the requests the target saw, one per
        transaction, none counted again as a custom timer.
        """
        target, base = self.serve()
        turret = self.launch(
            "by_hand.py", standalone=True, target_base=base, cannons=3,
            args=("--duration", "2", "--summary-json", "summary.json"),
        )
        self.assertEqual(await turret.wait_exit(60), 0, turret.output)
        summary = json.loads((turret.folder / "summary.json").read_text())
        rows = {row["name"]: row for row in summary["requests"]}
        self.assertEqual(set(rows), {"hand fast"})
        self.assertEqual(rows["hand fast"]["requests"], target.seen["hand fast"])
        self.assertEqual(rows["hand fast"]["requests"], summary["transactions"])
        self.assertEqual(rows["hand fast"]["statuses"], {"200": summary["transactions"]})
        self.assertEqual(rows["hand fast"]["average_bytes"], 4.0)
        self.assertEqual(summary["custom_timers"], {})
