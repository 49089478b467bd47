"""
A dead HQ machine (a crashed host, a network split: no TCP connection is
closed) is noticed by the ZMTP heartbeats, and the run ends as for a lost
HQ; the socket options that make it so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zmq
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._hq.link import HQLink
from octtwisted._hq.sockopts import SocketOptions, refused_address
from octtwisted.testing import FakeHQ
from tests.blackhole import BlackHoleProxy
from tests.helpers import TurretProcess, write_config


class SocketOptionsTests(SynchronousTestCase):
    def test_heartbeats(self) -> None:
        """
        A silence timeout of 20 s pings every 5 s, drops the connection 20 s
        after an unanswered ping (a bound of 25 s), and asks the HQ to drop
        us after 20 s without a word; 0 sets no heartbeat at all.
        """
        context: zmq.Context[Any] = zmq.Context()
        self.addCleanup(context.term)
        for options, expected in [
            (SocketOptions(), (5000, 20000, 20000)),
            (SocketOptions(silence_timeout=1, ipv6=True), (250, 1000, 1000)),
            (SocketOptions(silence_timeout=0), ()),
        ]:
            socket = context.socket(zmq.PUSH)
            self.addCleanup(socket.close, 0)
            names = (zmq.HEARTBEAT_IVL, zmq.HEARTBEAT_TIMEOUT, zmq.HEARTBEAT_TTL,
                     zmq.CONNECT_TIMEOUT, zmq.HANDSHAKE_IVL)
            defaults = tuple(socket.get(o) for o in names)
            options.apply(socket)
            got = tuple(socket.get(o) for o in names)
            if options.silence_timeout == 0:
                self.assertEqual(got, defaults)
            else:
                self.assertEqual(got, expected[:3] + (expected[1], expected[1]))
            self.assertEqual(socket.get(zmq.IPV6), int(options.ipv6))
        self.assertEqual(SocketOptions().detection_bound, 25.0)

    def test_refused_address(self) -> None:
        """
        ZeroMQ's own verdict on an address: a port is needed, junk and
        spaces are refused, an IPv6 one in brackets is taken.
        """
        self.assertIsNone(refused_address("tcp://127.0.0.1:5000", False))
        self.assertIsNone(refused_address("tcp://[::1]:5000", True))
        for bad in ("tcp://1.2.3.4", "tcp://tcp://1.2.3.4:5000", "tcp://127.0.0.1 :5000", "nonsense"):
            self.assertIsNotNone(refused_address(bad, False), bad)

    def test_refused_address_is_zeromqs_verdict(self) -> None:
        """
        ``refused_address`` decides without a socket (so the start-up check
        connects to nothing), and says what ZeroMQ's own ``connect`` says
        on each of these addresses: accepted (those all name this machine,
        so the real connects here go nowhere else) or refused, with
        ZeroMQ's reason. Before issue 26 it connected a throwaway socket.
        """
        addresses = [
            "tcp://127.0.0.1:9", "tcp://[::1]:9", "tcp://::1:9", "tcp://localhost:9",
            "tcp://127.0.0.1:9x", "tcp://127.0.0.1:*9", "tcp://127.0.0.1:", "tcp://127.0.0.1",
            "tcp://127.0.0.1:*", "tcp://:9", "tcp://[::1:9", "tcp://127.0.0.1 :9",
            "tcp:// 127.0.0.1:9", "tcp://.a:9", "tcp://-a:9", "tcp://_a:9", "tcp://a/b:9",
            "tcp://é:9", "tcp://tcp://1.2.3.4:5000", "tcp://", "nonsense", "foo://127.0.0.1:9",
            "tcp://127.0.0.1:9/x", "tcp://a@b:9",
        ]
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.addCleanup(context.term)
        for address in addresses:
            socket = context.socket(zmq.PUSH)
            socket.set(zmq.LINGER, 0)
            try:
                socket.connect(address)
                expected = None
            except zmq.ZMQError as e:
                expected = str(e)
            finally:
                socket.close()
            self.assertEqual(refused_address(address, True), expected, address)


class HQLinkOptionsTests(TestCase):
    timeout = 30

    def test_both_sockets_get_the_options(self) -> None:
        """
        HQLink sets the heartbeats and IPv6 on its SUB (orders) and PUSH
        (results) sockets, and the send high-water mark on the PUSH one.
        """
        link = HQLink(
            order_address="tcp://[::1]:9",
            result_address="tcp://[::1]:9",
            uuid="t",
            reactor=reactor,
            linger=0,
            options=SocketOptions(send_hwm=7, ipv6=True, silence_timeout=2),
        )
        link.startService()
        self.addCleanup(link.stopService)
        for connection in (link._orders, link._push):
            assert connection is not None
            socket = connection.socket
            self.assertEqual(socket.get(zmq.HEARTBEAT_IVL), 500)
            self.assertEqual(socket.get(zmq.HEARTBEAT_TIMEOUT), 2000)
            self.assertEqual(socket.get(zmq.IPV6), 1)
        assert link._push is not None
        self.assertEqual(link._push.socket.get(zmq.SNDHWM), 7)


class DeadHQTests(TestCase):
    timeout = 120


    async def test_black_holed_hq(self) -> None:
        """
        Between the turret and the HQ, a proxy that stops forwarding without
        closing anything (a dead HQ host): with ``hq_silence_timeout: 1``
        the results socket reports the loss within the 1.25 s bound (plus
        slack for a loaded machine), the run stops ``hq_lost_timeout`` (1 s)
        later, and once the network carries packets again the turret is
        ``ready`` for the HQ and obeys ``kill``. While the HQ is alive the
        heartbeats raise no false alarm.
        """
        hq = FakeHQ()
        hq.start()
        self.addCleanup(hq.stop)
        orders, results = BlackHoleProxy(hq.publisher_port), BlackHoleProxy(hq.rc_port)
        ports = {}
        for key, proxy in (("hq_publisher", orders), ("hq_rc", results)):
            ports[key] = proxy.start()
            self.addCleanup(proxy.stop)
        folder = Path(self.mktemp()).absolute()
        config = write_config(
            folder,
            script="deferred_sleep.py",
            cannons=2,
            hq_address="127.0.0.1",
            **ports,
            hq_silence_timeout=1,
            hq_lost_timeout=1,
        )
        turret = TurretProcess(["-c", str(config)], cwd=folder)
        self.addCleanup(turret.cleanup)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(20)
        await deferLater(reactor, 3, lambda: None)  # 12 pings answered
        self.assertNotIn("lost its connection", turret.output)
        before = len(hq.results)
        swallowed = reactor.seconds()
        for proxy in (orders, results):
            proxy.swallow()
        lost = await turret.wait_output("lost its connection to the HQ", 30)
        gone = await turret.wait_output("the HQ has been away for 1.0s: stopping the run", 30)
        self.assertLess(lost - swallowed, 1.25 + 3.0, "the loss was noticed too late")
        self.assertGreater(gone - lost, 0.9)
        await turret.wait_output("stopping -> ready", 30)
        self.assertTrue(turret.running)
        for proxy in (orders, results):
            proxy.forward()
        statuses = len(hq.statuses)
        await hq.wait_for_status("ready", turret.uuid, timeout=30, after=statuses)
        self.assertEqual((await hq.handshake(turret.uuid))["status"], "ready")
        self.assertGreaterEqual(len(hq.results), before)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0, turret.output[-3000:])
        self.assertNotIn("Traceback", turret.output)

    async def stall(self, receive_hwm: int) -> TurretProcess:
        """
        A turret with ``hq_silence_timeout: 1`` whose HQ stops reading for
        5 s mid-run, then reads again; killed once it has caught up.
        """
        hq = FakeHQ(receive_hwm=receive_hwm)
        hq.start()
        self.addCleanup(hq.stop)
        self.hq = hq
        folder = Path(self.mktemp()).absolute()
        config = write_config(
            folder,
            script="deferred_sleep.py",
            **hq.turret_config(cannons=20, max_pending_results=3000, hq_silence_timeout=1, hq_lost_timeout=0),
        )
        turret = TurretProcess(["-c", str(config)], cwd=folder)
        self.addCleanup(turret.cleanup)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(500)
        hq.pause_results()
        await deferLater(reactor, 5, lambda: None)  # the scenario: a 5 s stall
        hq.resume_results()
        count = len(hq.results)
        await hq.wait_for_results(count + 1000, timeout=30)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0, turret.output[-3000:])
        return turret

    async def test_busy_hq_is_not_dead(self) -> None:
        """
        An HQ whose code stops reading for 5 s (its ZeroMQ, with the real
        HQ's unlimited receive queue, still takes the data and answers the
        pings), with ``hq_silence_timeout: 1``: no connection is dropped,
        and every result the turret made arrives.
        """
        turret = await self.stall(receive_hwm=0)
        made = int(turret.output.split("turret killed: ")[1].split(" results")[0])
        await self.hq.wait_for_results(made, timeout=10)
        self.assertEqual(len(self.hq.results), made)
        self.assertNotIn("lost its connection", turret.output)
