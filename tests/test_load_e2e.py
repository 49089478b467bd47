"""
The open model and load stages end to end: the real ``twistd oct-turret``
process against FakeHQ, and standalone.
"""

from __future__ import annotations

import json
from typing import Any

from tests.helpers import TurretProcess, TurretTestCase

RESULT_KEYS = {"turret_name", "elapsed", "epoch", "scriptrun_time", "error", "custom_timers"}


class OpenModelEndToEnd(TurretTestCase):
    timeout = 90
    turret_keys = {"rampup": 0}

    def setUp(self) -> None:
        self.hq = self.start_hq()

    async def test_rate_holds_while_transactions_slow_down(self) -> None:
        """
        At 100 transactions/s, while each transaction takes 1 ms longer
        than the one before (10 ms, then up to 300 ms), the transactions
        start 10 ms apart all the same: the starts of the results (their
        epoch and elapsed) keep the planned rate, and the results keep the
        six keys.
        """
        hq = self.hq
        turret = self.launch("slowing_down.py", cannons=100, arrival_rate=100)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        results = await hq.wait_for_results(250, timeout=30)
        for result in results:
            self.assertEqual(set(result), RESULT_KEYS)
            self.assertEqual(result["error"], "")
        times = sorted(r["custom_timers"]["wait"] for r in results)
        self.assertGreater(times[-1], 10 * times[0], "the transactions did not slow down")
        starts = sorted(r["elapsed"] for r in results)
        # Start n was planned at n * 10 ms: 250 results started over ~2.5 s.
        span = starts[249] - starts[0]
        self.assertLess(abs(span / 249 - 0.01), 0.001, f"mean gap {span / 249:.4f}s, not 10 ms")
        epochs = sorted(r["epoch"] for r in results)
        self.assertLess(abs((epochs[249] - epochs[0]) / 249 - 0.01), 0.001)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)


class StandaloneLoadEndToEnd(TurretTestCase):
    timeout = 90

    async def run_standalone(
        self, script: str, *, extra: tuple[str, ...] = (), **keys: Any
    ) -> tuple[TurretProcess, dict[str, Any]]:
        turret = self.launch(
            script, standalone=True, args=("--summary-json", "summary.json", *extra), **keys
        )
        self.folder = turret.folder
        code = await turret.wait_exit(timeout=60)
        self.assertEqual(code, 0, turret.output)
        return turret, json.loads((turret.folder / "summary.json").read_text())

    async def test_stages_run_ends_with_the_last_stage(self) -> None:
        """
        A standalone run with stages and no --duration ends when the last
        stage does (here 0 -> 20 cannons over 1 s, 20 -> 5 over 1 s), warns
        that rampup is not used, and its report gives that duration (not
        "until stopped").
        """
        turret, summary = await self.run_standalone(
            "deferred_sleep.py", cannons=20, rampup=3,
            stages=[{"duration": 1, "target": 20}, {"duration": 1, "target": 5}],
            extra=("--report", "report.html"),
        )
        page = (self.folder / "report.html").read_text()
        self.assertIn("2 s", page)
        self.assertNotIn("until stopped", page)
        self.assertIn("'rampup' (3s) is not used with 'stages'", turret.output)
        self.assertGreater(summary["duration"], 1.9)
        self.assertLess(summary["duration"], 4.0)
        self.assertGreater(summary["transactions"], 100)
        self.assertIsNone(summary["starts"])

    async def test_open_model_summary_conserves_starts(self) -> None:
        """
        A standalone open-model run with too few cannons for the rate (20
        cannons, 0.5 s transactions, 100/s for one 2 s stage): starts are
        dropped and counted, started + dropped = planned, each started
        transaction is a result, and the table names the dropped starts.
        """
        turret, summary = await self.run_standalone(
            "slow.py", cannons=20, arrival_rate=100,
            stages=[{"duration": 2, "target": 100}],
        )
        starts = summary["starts"]
        self.assertEqual(starts["started"] + starts["dropped"], starts["planned"])
        self.assertGreater(starts["dropped"], 50)
        self.assertEqual(summary["transactions"], starts["started"])
        self.assertIn("Dropped starts", turret.output)
