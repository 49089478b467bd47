"""
Where each style of script runs, end to end: the real ``twistd oct-turret``
against FakeHQ over real ZeroMQ, timing and error texts asserted.

Several turrets run at once against one FakeHQ, told apart by their names.
"""

from __future__ import annotations

import signal
import statistics
from typing import Any

from tests.helpers import TurretProcess, TurretTestCase

#: How far the median scriptrun_time may be above the scripted wait.
MEDIAN_TOLERANCE = 0.010

MISUSE_FIX = 'set blocking = False on the Transaction class (or "blocking": false in the config)'


class ExecutionEndToEnd(TurretTestCase):
    timeout = 90
    turret_keys = {"cannons": 2, "rampup": 0}

    def setUp(self) -> None:
        self.hq = self.start_hq()

    async def fire(
        self, turrets: dict[str, TurretProcess], each: int, context: dict[str, Any] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """
        Start every turret (after set_transaction_context, if given), wait
        for ``each`` results from each, kill them (exit 0); the results by
        turret name.
        """
        for turret in turrets.values():
            await self.hq.wait_for_status("ready", turret.uuid)
            await self.hq.handshake(turret.uuid)
        if context is not None:
            self.hq.publish("set_transaction_context", context)
        self.hq.publish("start", "open fire")

        def enough() -> bool | None:
            got = self.by_name()
            return True if all(len(got.get(n, [])) >= each for n in turrets) else None

        await self.hq.wait_until(enough, 30, f"{each} results from each turret")
        self.hq.publish("kill", None)
        for turret in turrets.values():
            self.assertEqual(await turret.wait_exit(), 0, turret.output)
        return self.by_name()

    def by_name(self) -> dict[str, list[dict[str, Any]]]:
        got: dict[str, list[dict[str, Any]]] = {}
        for result in self.hq.results:
            got.setdefault(result["turret_name"], []).append(result)
        return got

    def assertTimed(self, results: list[dict[str, Any]], wait: float) -> None:
        times = [r["scriptrun_time"] for r in results]
        self.assertGreaterEqual(min(times), wait - 0.001)
        self.assertLess(statistics.median(times), wait + MEDIAN_TOLERANCE)

    async def test_reactor_styles(self) -> None:
        """
        Plain classes (no octtwisted.Transaction) whose run returns a
        Deferred, is async def, or is an inlineCallbacks method run on the
        reactor, say so at start with the reason, and are timed right
        (20 ms waits: scriptrun_time at least 20 ms, median within 10 ms).
        """
        turrets = {
            "deferred": self.launch("plain_deferred.py", name="deferred"),
            "async": self.launch("plain_async.py", name="async"),
            "inline": self.launch("plain_inline.py", name="inline"),
        }
        got = await self.fire(turrets, 20)
        for name in turrets:
            self.assertEqual({r["error"] for r in got[name]}, {""}, name)
            self.assertTimed(got[name], 0.02)
        self.assertEqual({tuple(r["custom_timers"]) for r in got["deferred"]}, {("planned",)})
        for result in got["async"]:
            self.assertLess(abs(result["custom_timers"]["wait"] - result["scriptrun_time"]), 0.005)
        self.assertIn("Transaction steps run on the reactor: its module imports twisted", turrets["deferred"].output)
        self.assertIn("Transaction steps run on the reactor: run is async def", turrets["async"].output)
        self.assertIn(
            "Transaction steps run on the reactor: run is an inlineCallbacks method", turrets["inline"].output
        )
        for turret in turrets.values():
            self.assertNotIn("Traceback", turret.output)

    async def test_reactor_failures(self) -> None:
        """
        On the reactor, a failing Deferred, a raising coroutine and a
        failing inlineCallbacks method are "Type: message" error results
        (timed); a Deferred that never fires under transaction_timeout is
        "timeout after 0.1s", timed about 0.1 s.
        """
        turrets = {
            "fails": self.launch("plain_deferred.py", name="fails", outcome="fail"),
            "async-fails": self.launch("plain_async.py", name="async-fails", outcome="fail"),
            "inline-fails": self.launch("plain_inline.py", name="inline-fails", outcome="fail"),
            "never": self.launch("plain_deferred.py", name="never", outcome="never", transaction_timeout=0.1),
        }
        got = await self.fire(turrets, 6)
        self.assertEqual({r["error"] for r in got["fails"]}, {"ValueError: bad value"})
        self.assertEqual({r["error"] for r in got["async-fails"]}, {"KeyError: 'missing'"})
        self.assertEqual({r["error"] for r in got["inline-fails"]}, {"RuntimeError: inline failed"})
        self.assertTimed(got["fails"], 0.02)
        self.assertEqual({r["error"] for r in got["never"]}, {"timeout after 0.1s"})
        never = [r["scriptrun_time"] for r in got["never"]]
        self.assertGreaterEqual(min(never), 0.099)
        self.assertLess(statistics.median(never), 0.13)
        for turret in turrets.values():
            self.assertNotIn("Unhandled error in Deferred", turret.output)

    async def test_thread_styles(self) -> None:
        """
        A classic BaseTransaction and a plain synchronous class, both in
        time.sleep, run in threads (said at start, with the reason) and
        are timed right, with the HQ's transaction context; a failing one
        gives "Type: message".
        """
        turrets = {
            "classic": self.launch("style_classic.py", name="classic", wait=0.02),
            "sync": self.launch("plain_sync.py", name="sync"),
            "sync-fails": self.launch("plain_sync.py", name="sync-fails", outcome="fail"),
        }
        got = await self.fire(turrets, 20, context={"user_id": 7})
        for name in ("classic", "sync"):
            self.assertEqual({r["error"] for r in got[name]}, {""}, name)
            self.assertTimed(got[name], 0.02)
        for result in got["sync"]:
            self.assertLessEqual(result["custom_timers"]["slept"], result["scriptrun_time"])
            self.assertEqual(result["custom_timers"]["context_user"], 7.0)
        self.assertEqual({r["error"] for r in got["sync-fails"]}, {"ZeroDivisionError: division by zero"})
        self.assertIn(
            "Transaction steps run in threads, one per cannon: plain synchronous steps",
            turrets["sync"].output,
        )
        self.assertIn("Transaction steps run in threads, one per cannon", turrets["classic"].output)

    async def test_thread_transaction_timeout(self) -> None:
        """
        In threads, a run longer than transaction_timeout is reported when
        the time is up ("timeout after 0.2s", timed 0.2 s, no custom timers
        of the run still going), and the cannon goes on when run returns.
        """
        turrets = {"slow": self.launch("plain_sync.py", name="slow", wait=0.6, transaction_timeout=0.2, cannons=1)}
        got = await self.fire(turrets, 3)
        results = got["slow"]
        self.assertEqual({r["error"] for r in results}, {"timeout after 0.2s"})
        self.assertEqual({len(r["custom_timers"]) for r in results}, {0})
        for result in results:
            # Reported at the timeout, not when run returns (0.6 s).
            self.assertTrue(0.199 <= result["scriptrun_time"] < 0.45, result)
        starts = [r["elapsed"] for r in results]
        for before, after in zip(starts, starts[1:]):
            self.assertGreaterEqual(after - before, 0.6)

    async def test_misuse_is_an_error(self) -> None:
        """
        Steps run in threads (config "blocking": true) that return a
        Deferred, or an async def run, are error results naming the fix
        blocking = False, logged once per run; self.http used from a thread
        fails with a clear error.
        """
        turrets = {
            "deferred": self.launch("plain_deferred.py", name="deferred", blocking=True),
            "async": self.launch("plain_async.py", name="async", blocking=True),
            "http": self.launch("http_in_thread.py", name="http"),
        }
        got = await self.fire(turrets, 10)
        self.assertEqual(
            {r["error"] for r in got["deferred"]},
            {"TypeError: run() returned a Deferred, but this script's steps run in threads, "
             "where nothing waits for it: " + MISUSE_FIX + " to run them on the reactor"},
        )
        self.assertEqual(len({r["error"] for r in got["async"]}), 1)
        self.assertIn("run() returned a coroutine (async def)", got["async"][0]["error"])
        self.assertIn(MISUSE_FIX, got["async"][0]["error"])
        for name in ("deferred", "async"):
            self.assertEqual(turrets[name].output.count("(logged once per run)"), 1, name)
        self.assertIn('the config says "blocking": true', turrets["deferred"].output)
        self.assertEqual(
            {r["error"] for r in got["http"]},
            {"RuntimeError: self.http belongs to the reactor, and this script's steps run in "
             "threads (blocking): use a blocking HTTP client there (such as requests), or set "
             "blocking = False to run the steps on the reactor"},
        )
        self.assertIn("Transaction.blocking = True", turrets["http"].output)

    async def test_sigterm_with_never_ending_transactions(self) -> None:
        """
        SIGTERM while every transaction never ends (a Deferred that never
        fires, a coroutine awaiting it, a plain sync class and a classic
        script that never return): after the stop timeout (0.5 s) each
        in-flight transaction is reported cancelled, the threads left
        behind are counted in the log, and every process exits with the
        final status sent.
        """
        turrets = {
            "reactor": self.launch("plain_deferred.py", name="reactor", outcome="never", stop_timeout=0.5),
            "async": self.launch("plain_async.py", name="async", outcome="never", stop_timeout=0.5),
            "threads": self.launch("plain_sync.py", name="threads", outcome="never", stop_timeout=0.5),
            "classic": self.launch("style_classic.py", name="classic", wait=1000, stop_timeout=0.5),
        }
        for turret in turrets.values():
            await self.hq.wait_for_status("ready", turret.uuid)
            await self.hq.handshake(turret.uuid)
        self.hq.publish("start", "open fire")
        for turret in turrets.values():
            await self.hq.wait_for_status("Running", turret.uuid)
            await self.hq.handshake(turret.uuid)
            turret.signal(signal.SIGTERM)
        for turret in turrets.values():
            await turret.wait_exit(timeout=15)
            await self.hq.wait_for_status("Killed", turret.uuid)
        await self.hq.wait_until(lambda: True if len(self.hq.results) >= 8 else None, 5, "8 results")
        cancelled = "cancelled: still running at the stop timeout (0.5s)"
        got = self.by_name()
        for name in turrets:
            self.assertEqual([r["error"] for r in got[name]], [cancelled, cancelled], name)
        for name in ("threads", "classic"):
            self.assertIn("left 2 cannon thread(s) behind", turrets[name].output)
            self.assertIn("Transaction steps run in threads", turrets[name].output)

    async def test_standalone_all_failed_exits_1(self) -> None:
        """
        A standalone run in which every transaction failed exits 1, for a
        failing Deferred, coroutine, classic script and plain sync class.
        """
        runs = []
        for script, keys in (
            ("plain_deferred.py", {"outcome": "fail"}),
            ("plain_async.py", {"outcome": "fail"}),
            ("classic_fails.py", {}),
            ("plain_sync.py", {"outcome": "fail"}),
        ):
            turret = self.launch(script, standalone=True, args=("--duration", "0.5"), cannons=1, **keys)
            runs.append((script, turret))
        for script, turret in runs:
            self.assertEqual(await turret.wait_exit(), 1, f"{script}:\n{turret.output}")
            self.assertIn("no transaction succeeded", turret.output)
