"""
End to end: the real ``twistd -n oct-turret`` process against
:class:`~octtwisted.testing.FakeHQ`, over real ZeroMQ sockets on 127.0.0.1.
"""

from __future__ import annotations

import signal
from typing import Any

from tests.helpers import TurretProcess, TurretTestCase

RESULT_KEYS = {"turret_name", "elapsed", "epoch", "scriptrun_time", "error", "custom_timers"}


class EndToEndTests(TurretTestCase):
    timeout = 90
    turret_keys = {"cannons": 3, "rampup": 0.3}

    def setUp(self) -> None:
        self.hq = self.start_hq()

    async def barrier(self, turret: TurretProcess) -> dict[str, Any]:
        """
        A status_request answered: everything the turret sent before its
        answer has arrived (PUSH keeps order).
        """
        return await self.hq.handshake(turret.uuid)

    async def test_full_lifecycle(self) -> None:
        """
        ready is announced (and again 2 s later); start gives Running and
        results with the six keys and the turret's name; stop ends the
        results and gives ready; a second start fires again; kill gives
        Killed and the process exits 0.
        """
        hq = self.hq
        turret = self.launch()
        first = await hq.wait_for_status("ready", turret.uuid)
        self.assertEqual(first["cannons"], 3)
        self.assertEqual(first["turret"], "test-turret")
        await hq.wait_for_status("ready", turret.uuid, after=1)
        await self.barrier(turret)

        hq.publish("start", "open fire")
        await hq.wait_for_status("Running", turret.uuid)
        results = await hq.wait_for_results(30)
        for result in results:
            self.assertEqual(set(result), RESULT_KEYS)
            self.assertEqual(result["turret_name"], "test-turret")
            self.assertEqual(result["error"], "")
            self.assertGreaterEqual(result["scriptrun_time"], 0.009)
            self.assertEqual(result["custom_timers"], {"wait": 0.01})

        mark = len(hq.statuses)
        hq.publish("stop", "premature stop")
        await hq.wait_for_status("ready", turret.uuid, after=mark)
        stopped_at = len(hq.results)
        await self.barrier(turret)
        self.assertEqual(len(hq.results), stopped_at, "results after stop")

        mark = len(hq.statuses)
        hq.publish("start", "open fire")
        await hq.wait_for_status("Running", turret.uuid, after=mark)
        await hq.wait_for_results(stopped_at + 30)

        hq.publish("kill", None)
        await hq.wait_for_status("Killed", turret.uuid)
        self.assertEqual(await turret.wait_exit(), 0)
        self.assertNotIn("Traceback", turret.output)

    async def test_addressed_orders(self) -> None:
        """
        Orders addressed to the turret's uuid are obeyed; orders addressed
        to another turret are not.
        """
        hq = self.hq
        turret = self.launch()
        await hq.wait_for_status("ready", turret.uuid)
        await self.barrier(turret)
        hq.publish("start", "open fire", topic="some-other-turret")
        hq.publish("kill", None, topic="some-other-turret")
        answer = await self.barrier(turret)
        self.assertEqual(answer["status"], "ready")
        hq.publish("start", "open fire", topic=turret.uuid)
        await hq.wait_for_status("Running", turret.uuid)
        hq.publish("kill", None, topic=turret.uuid)
        self.assertEqual(await turret.wait_exit(), 0)

    async def test_garbage_orders_survived(self) -> None:
        """
        Frames that are not orders are logged and ignored, while waiting and
        while firing: the turret keeps answering and firing.
        """
        hq = self.hq
        turret = self.launch()
        await hq.wait_for_status("ready", turret.uuid)
        await self.barrier(turret)
        garbage = [
            b" not json",
            b"\xff\xfe\x00 {}",
            b' {"command": "self-destruct", "msg": 1}',
            b' ["command", "start"]',
            b' {"msg": "no command"}',
            b' {"command": "set_transaction_context", "msg": "not a dict"}',
            b"",
            [b"", b"{", b"three frames"],
            b" " + b"x" * (1 << 20),
        ]
        for frame in garbage:
            hq.publish_raw(frame)
        self.assertEqual((await self.barrier(turret))["status"], "ready")
        hq.publish("start", "open fire")
        await hq.wait_for_status("Running", turret.uuid)
        for frame in garbage:
            hq.publish_raw(frame)
        self.assertEqual((await self.barrier(turret))["status"], "Running")
        count = len(hq.results)
        await hq.wait_for_results(count + 20)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)
        self.assertIn("ignored a bad order", turret.output)

    async def test_sigterm_while_running(self) -> None:
        """
        SIGTERM while firing: the cannons stop, the final status and every
        result reach the HQ, and the process ends.
        """
        hq = self.hq
        turret = self.launch()
        await hq.wait_for_status("ready", turret.uuid)
        await self.barrier(turret)
        hq.publish("start", "open fire")
        await hq.wait_for_results(10)
        turret.signal(signal.SIGTERM)
        await turret.wait_exit()
        await hq.wait_for_status("Killed", turret.uuid)
        self.assertIn("turret stopped:", turret.output)
        reported = int(turret.output.split("turret stopped: ")[1].split(" results")[0])
        await hq.wait_for_results(reported)
        self.assertEqual(len(hq.results), reported)

    async def test_config_error_exits_non_zero(self) -> None:
        """
        A bad config stops the turret at start: one line naming the
        problem, exit status 2, no traceback.
        """
        turret = self.launch(cannons=0)
        code = await turret.wait_exit()
        self.assertEqual(code, 2)
        lines = [line for line in turret.output.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, turret.output)
        self.assertIn("oct-turret: error:", lines[0])
        self.assertIn("'cannons' must be an integer >= 1, got 0", lines[0])
