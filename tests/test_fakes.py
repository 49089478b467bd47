"""
The shipped fakes agree with the real sockets: for the same traffic,
:class:`~octtwisted._hq.link.HQLink` talking to :class:`FakeHQ` over ZeroMQ
records what :class:`RecordingSink` and :class:`FakeOrderSource` record in
memory.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from octtwisted._core.messages import Order, Result, StatusReport
from octtwisted._hq.link import HQLink
from octtwisted.testing import FakeHQ, FakeOrderSource, RecordingSink


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """
    Wait (polling every 10 ms) until ``condition()`` is true.
    """
    waited = 0.0
    while not condition():
        if waited > timeout:
            raise TimeoutError("condition not met")
        await deferLater(reactor, 0.01, lambda: None)
        waited += 0.01


class FakesMatchSocketsTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.hq = FakeHQ()
        self.hq.start()
        self.addCleanup(self.hq.stop)
        self.link = HQLink(
            order_address=f"tcp://127.0.0.1:{self.hq.publisher_port}",
            result_address=f"tcp://127.0.0.1:{self.hq.rc_port}",
            uuid="turret-a",
            reactor=reactor,
            linger=0.5,
        )
        self.link.startService()
        self.addCleanup(self.link.stopService)

    async def test_status_and_results(self) -> None:
        """
        Status and results sent through the real link arrive at FakeHQ as
        the same dicts RecordingSink records, sorted the HQ's way (a result
        whose error or timer says ``status`` is still a result).
        """
        await until(lambda: self.link.connected)
        sink = RecordingSink()
        status = StatusReport("t", "ready", "turret-a", 1.5, "s.py", 4)
        results = [
            Result("t", 0.1, 1.0, 0.2, "", {"login": 0.1}),
            Result("t", 0.2, 1.1, 0.3, "HTTP status 500", {"status_page": 0.2}),
        ]
        for target in (self.link, sink):
            target.send_status(status)
            for result in results:
                target.send_result(result)
        await self.hq.wait_for_results(2)
        self.assertEqual(self.hq.statuses, sink.statuses)
        self.assertEqual(self.hq.results, sink.results)
        self.assertEqual(len(sink.statuses), 1)
        self.assertEqual(self.hq.results[1]["error"], "HTTP status 500")

    async def test_orders(self) -> None:
        """
        Orders published by FakeHQ reach the handler as the Orders
        FakeOrderSource delivers; bad frames and orders for other turrets
        do not reach it.
        """
        real: list[Order] = []
        self.link.listen(real.append)
        # Wait until the subscription is in place.
        while not real:
            self.hq.publish("status_request")
            await deferLater(reactor, 0.05, lambda: None)
        real.clear()
        orders: list[tuple[str, Any, str]] = [
            ("set_transaction_context", {"k": [1, 2]}, ""),
            ("start", "open fire", "turret-a"),
            ("stop", "premature stop", ""),
            ("kill", None, "turret-a"),
        ]
        fake = FakeOrderSource()
        expected: list[Order] = []
        fake.listen(expected.append)
        for command, msg, topic in orders:
            self.hq.publish_raw(b" {broken")
            self.hq.publish("start", "open fire", topic="turret-b")
            self.hq.publish(command, msg, topic)
            fake.order(command, msg, topic)
        await until(lambda: len(real) >= len(orders))
        self.assertEqual(real, expected)
        self.flushLoggedErrors()
