"""
Test scripts in every style, end to end through FakeHQ, and the timers.
"""

from __future__ import annotations

import os
import statistics
import sys
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from octtwisted import CustomTimer, timed
from octtwisted._scripts.compat import install_oct_turrets_fallback
from octtwisted._scripts.loading import is_blocking, load_transaction_class
from tests.helpers import SCRIPTS, TurretProcess, TurretTestCase

#: How far above the scripted wait scriptrun_time may be (median / each).
MEDIAN_TOLERANCE = 0.010
EACH_TOLERANCE = 0.050


class ScriptStylesEndToEnd(TurretTestCase):
    timeout = 90
    turret_keys = {"cannons": 3, "rampup": 0}

    def setUp(self) -> None:
        self.hq = self.start_hq()

    async def run_turrets(self, *turrets: TurretProcess, results: int) -> list[dict[str, Any]]:
        for turret in turrets:
            await self.hq.wait_for_status("ready", turret.uuid)
            await self.hq.handshake(turret.uuid)
        self.hq.publish("set_transaction_context", {"user_id": 42})
        self.hq.publish("start", "open fire")
        got = await self.hq.wait_for_results(results)
        self.hq.publish("kill", None)
        for turret in turrets:
            self.assertEqual(await turret.wait_exit(), 0, turret.output)
        return got

    def assertTimes(self, results: list[dict[str, Any]], wait: float) -> None:
        times = [r["scriptrun_time"] for r in results]
        self.assertGreaterEqual(min(times), wait - 0.001)
        self.assertLess(statistics.median(times), wait + MEDIAN_TOLERANCE)
        self.assertLess(max(times), wait + EACH_TOLERANCE)

    async def test_three_styles(self) -> None:
        """
        A Deferred script, an async def script and a classic blocking script
        that each wait 50 ms report scriptrun_time 0.05 s (median within
        10 ms, each within 50 ms) and their custom timers (a timer used
        twice adds up, within the transaction's time); async setup is not
        timed; the HQ's context reaches the scripts.
        """
        turrets = {
            "deferred": self.launch("style_deferred.py", name="deferred"),
            "async": self.launch("style_async.py", name="async"),
            "classic": self.launch("style_classic.py", name="classic"),
        }
        await self.run_turrets(*turrets.values(), results=150)
        by_name: dict[str, list[dict[str, Any]]] = {}
        for result in self.hq.results:
            by_name.setdefault(result["turret_name"], []).append(result)
        self.assertEqual(set(by_name), {"deferred", "async", "classic"})
        for name, results in by_name.items():
            self.assertGreater(len(results), 10, name)
            self.assertEqual({r["error"] for r in results}, {""}, name)
            self.assertTimes(results, 0.05)
        for result in by_name["deferred"]:
            self.assertLess(abs(result["custom_timers"]["waiting"] - result["scriptrun_time"]), 0.005)
        for result in by_name["async"]:
            self.assertEqual(set(result["custom_timers"]), {"half", "context_user"})
            # The two 25 ms halves add up (not the last one alone), and
            # they are part of the transaction's own time: bounds that hold
            # however slow a loaded machine makes the wait.
            half = result["custom_timers"]["half"]
            self.assertTrue(0.049 < half <= result["scriptrun_time"], (half, result["scriptrun_time"]))
            self.assertEqual(result["custom_timers"]["context_user"], 42.0)
        for result in by_name["classic"]:
            self.assertEqual(set(result["custom_timers"]), {"sleep_real"})

    async def test_classic_without_oct_turrets(self) -> None:
        """
        A classic script runs when oct-turrets cannot be imported (as on
        Python 3.12+): the turret's stand-ins take its place.
        """
        env = dict(os.environ, PYTHONPATH=str(SCRIPTS / "broken_oct_turrets"))
        turret = self.launch("style_classic.py", env=env)
        results = await self.run_turrets(turret, results=20)
        self.assertEqual({r["error"] for r in results}, {""})
        self.assertEqual({k for r in results for k in r["custom_timers"]}, {"sleep_fallback"})
        self.assertTimes(results, 0.05)

    async def test_blocking_runs_in_threads(self) -> None:
        """
        20 blocking cannons each sleeping 0.2 s really run 20 at a time
        (never more): the transactions' own times, [epoch, epoch +
        scriptrun_time], overlap 20 deep. The turret answers status_request
        while they sleep.
        """
        turret = self.launch("style_classic.py", cannons=20, wait=0.2)
        await self.hq.wait_for_status("ready", turret.uuid)
        await self.hq.handshake(turret.uuid)
        self.hq.publish("start", "open fire")
        await self.hq.wait_for_results(20)
        answer = await self.hq.handshake(turret.uuid, interval=0.05)
        self.assertEqual(answer["status"], "Running")
        first = len(self.hq.results)
        await self.hq.wait_for_results(first + 300)
        window = self.hq.results[first:first + 300]
        # Ends before starts at the same instant: back to back is not overlap.
        events = sorted(
            [(r["epoch"] + r["scriptrun_time"], -1) for r in window] + [(r["epoch"], 1) for r in window]
        )
        depth = deepest = 0
        for _, step in events:
            depth += step
            deepest = max(deepest, depth)
        self.assertEqual(deepest, 20, "transactions in flight at once")
        self.hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)


class TimerTests(SynchronousTestCase):
    class Holder:
        def __init__(self) -> None:
            self.custom_timers: dict[str, float] = {}

    def test_with_adds_up(self) -> None:
        """
        ``with CustomTimer`` records the block's duration; the same name
        twice in one transaction adds up; a raising block is timed too.
        """
        now = [0.0]
        holder = self.Holder()
        with CustomTimer(holder, "a", clock=lambda: now[0]):
            now[0] += 0.25
        with self.assertRaises(ValueError):
            with CustomTimer(holder, "a", clock=lambda: now[0]):
                now[0] += 0.5
                raise ValueError()
        self.assertEqual(holder.custom_timers, {"a": 0.75})

    def test_async_with(self) -> None:
        """
        ``async with CustomTimer`` times the awaited block.
        """
        now = [10.0]
        holder = self.Holder()
        gate: Deferred[None] = Deferred()

        async def body() -> None:
            async with CustomTimer(holder, "b", clock=lambda: now[0]):
                await gate

        d = defer.ensureDeferred(body())
        now[0] = 12.5
        gate.callback(None)
        self.successResultOf(d)
        self.assertEqual(holder.custom_timers, {"b": 2.5})

    def test_timed(self) -> None:
        """
        ``timed`` records when the Deferred fires, success or failure, and
        passes its result on.
        """
        now = [0.0]
        holder = self.Holder()
        ok: Deferred[str] = Deferred()
        bad: Deferred[str] = Deferred()
        d1 = timed(holder, "ok", ok, clock=lambda: now[0])
        d2 = timed(holder, "bad", bad, clock=lambda: now[0])
        now[0] = 1.0
        ok.callback("body")
        now[0] = 3.0
        bad.errback(KeyError("x"))
        self.assertEqual(self.successResultOf(d1), "body")
        self.failureResultOf(d2, KeyError)
        self.assertEqual(holder.custom_timers, {"ok": 1.0, "bad": 3.0})


class BlockingRuleTests(SynchronousTestCase):
    def test_rule(self) -> None:
        """
        The config key wins, then the class attribute; classic scripts (no
        attribute, no Twisted import) are blocking, octtwisted.Transaction
        subclasses are not.
        """
        classic = load_transaction_class(SCRIPTS / "style_classic.py")
        ours = load_transaction_class(SCRIPTS / "style_async.py")
        self.assertTrue(is_blocking(classic, None))
        self.assertFalse(is_blocking(ours, None))
        self.assertFalse(is_blocking(classic, False))
        self.assertTrue(is_blocking(ours, True))

    def test_fallback_when_missing(self) -> None:
        """
        With oct_turrets not importable at all, the stand-ins are installed
        under its names.
        """
        saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "oct_turrets"}
        self.addCleanup(sys.modules.update, saved)
        for name in saved:
            del sys.modules[name]

        class Block:
            def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
                if name.split(".")[0] == "oct_turrets":
                    raise ImportError(f"No module named {name!r}")
                return None

        blocker = Block()
        sys.meta_path.insert(0, blocker)
        self.addCleanup(sys.meta_path.remove, blocker)
        self.addCleanup(lambda: [sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == "oct_turrets"])
        self.assertTrue(install_oct_turrets_fallback())
        from oct_turrets.base import BaseTransaction
        from oct_turrets.tools import CustomTimer as ClassicTimer

        self.assertEqual(BaseTransaction.__module__, "octtwisted._scripts.compat.oct_turrets.base")
        transaction = BaseTransaction({"a": 1})
        with ClassicTimer(transaction, "t"):
            pass
        self.assertIn("t", transaction.custom_timers)
