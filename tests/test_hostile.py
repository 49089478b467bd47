"""
Hostile input through the real ``twistd oct-turret`` process: deeply nested
orders, config values ZeroMQ refuses or Python cannot convert, IPv6 HQ
addresses, and a crafted turret package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import protocol, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted.testing import FakeHQ
from tests.helpers import TurretProcess, write_config


class HostileOrderTests(TestCase):
    timeout = 90

    async def test_deeply_nested_orders(self) -> None:
        """
        50 frames of ``' ' + '[' * 100000`` give rate-limited warnings and
        no traceback; the turret keeps answering and obeys ``kill``.
        """
        hq = FakeHQ()
        hq.start()
        self.addCleanup(hq.stop)
        folder = Path(self.mktemp()).absolute()
        config = write_config(folder, script="deferred_sleep.py", **hq.turret_config(cannons=1))
        turret = TurretProcess(["-c", str(config)], cwd=folder)
        self.addCleanup(turret.cleanup)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        for _ in range(50):
            hq.publish_raw(b" " + b"[" * 100_000)
        self.assertEqual((await hq.handshake(turret.uuid))["status"], "ready")
        await turret.wait_output("more bad orders ignored and not logged", 30)  # reported every 10 s
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0, turret.output[-3000:])
        self.assertNotIn("Traceback", turret.output)
        self.assertNotIn("RecursionError", turret.output)
        warnings = turret.output.count("ignored a bad order")
        self.assertTrue(1 <= warnings <= 10, f"{warnings} warnings for 50 bad frames")
        self.assertIn("nested too deeply", turret.output)


class AddressCheckTests(SynchronousTestCase):
    def test_zeromq_asked_at_start(self) -> None:
        """
        The start-up check asks ZeroMQ itself about both HQ addresses: one
        it refuses (here made past the config's own checks) is a one-line
        ConfigError naming the key, the address and ZeroMQ's reason; good
        ones, IPv6 included, pass.
        """
        import attrs

        from octtwisted._core.config import ConfigError, load_config
        from octtwisted._edge.options import _check_addresses

        folder = Path(self.mktemp()).absolute()
        config = load_config(write_config(folder))
        _check_addresses(config)
        _check_addresses(attrs.evolve(config, hq_address="::1"))
        with self.assertRaises(ConfigError) as caught:
            _check_addresses(attrs.evolve(config, hq_address="bad host"))
        message = str(caught.exception)
        self.assertIn("key 'hq_address': ZeroMQ refuses the address 'tcp://bad host:5000'", message)
        self.assertIn("Invalid argument", message)
        self.assertNotIn("\n", message)


class _Counted(protocol.Protocol):
    def connectionMade(self) -> None:
        self.factory.accepted += 1


class _Counting(protocol.ServerFactory):
    """A plain TCP listener that counts the connections it accepts."""

    protocol = _Counted

    def __init__(self) -> None:
        self.accepted = 0


class NoEarlyConnectionTests(TestCase):
    timeout = 90

    def listen(self) -> tuple[_Counting, dict[str, Any]]:
        counting = _Counting()
        ports: dict[str, Any] = {}
        for key in ("hq_publisher", "hq_rc"):
            port = reactor.listenTCP(0, counting, interface="127.0.0.1")
            self.addCleanup(port.stopListening)
            ports[key] = port.getHost().port  # type: ignore[attr-defined]
        return counting, ports

    async def test_refused_start_connects_to_nothing(self) -> None:
        """
        A config whose script has no ``Transaction`` class, or a syntax
        error, ends the real turret with its one-line error and no TCP
        connection to the HQ's ports (plain listeners count them). Before
        issue 26 the start-up address check connected a throwaway ZeroMQ
        socket to each port before the script was loaded: two connections.
        """
        counting, ports = self.listen()
        for script, text in (("no_transaction.py", None), ("syntax.py", "def broken(:\n")):
            folder = Path(self.mktemp()).absolute()
            config = write_config(folder, script=script, hq_address="127.0.0.1", **ports)
            if text is not None:
                (folder / script).write_text(text)
            turret = TurretProcess(["-c", str(config)], cwd=folder)
            self.addCleanup(turret.cleanup)
            self.assertEqual(await turret.wait_exit(), 2, turret.output)
            self.assertEqual(len(turret.output.strip().splitlines()), 1, turret.output)
        await deferLater(reactor, 0.5, lambda: None)  # any late accept
        self.assertEqual(counting.accepted, 0)

    async def test_good_start_connects_twice(self) -> None:
        """
        A good config makes exactly the two connections the turret keeps
        (orders and results), none for the start-up check: the listeners
        never answer ZeroMQ's greeting, so ZeroMQ keeps both waiting and
        makes no other. Before issue 26 the check's throwaway socket made
        two more.
        """
        counting, ports = self.listen()
        folder = Path(self.mktemp()).absolute()
        config = write_config(folder, hq_address="127.0.0.1", hq_silence_timeout=60, **ports)
        turret = TurretProcess(["-c", str(config)], cwd=folder)
        self.addCleanup(turret.cleanup)
        started = reactor.seconds()
        while counting.accepted < 2 and reactor.seconds() - started < 30:
            await deferLater(reactor, 0.1, lambda: None)
        await deferLater(reactor, 2, lambda: None)
        self.assertTrue(turret.running, turret.output)
        self.assertEqual(counting.accepted, 2, turret.output)


class HostileConfigTests(TestCase):
    timeout = 90

    async def refused(self, fragment: str, **keys: Any) -> str:
        """
        Start a turret with ``keys`` in its config: it must exit 2 with one
        line naming the problem, and no traceback.
        """
        folder = Path(self.mktemp()).absolute()
        config = write_config(folder, **keys)
        turret = TurretProcess(["-c", str(config)], cwd=folder)
        self.addCleanup(turret.cleanup)
        code = await turret.wait_exit()
        output = turret.output
        self.assertEqual(code, 2, output)
        self.assertNotIn("Traceback", output)
        lines = output.strip().splitlines()
        self.assertEqual(len(lines), 1, output)
        self.assertIn("oct-turret: error:", lines[0])
        self.assertIn(fragment, lines[0])
        return lines[0]

    async def test_addresses_zeromq_refuses(self) -> None:
        """
        ``hq_address`` values that ZeroMQ refuses at connect (a URL, spaces,
        a port in the address, junk) end the turret at start with one line.
        """
        for address in ("tcp://1.2.3.4", "127.0.0.1 ", " 127.0.0.1", "1.2.3.4:5000", "host name", "a/b", "[::1"):
            await self.refused("'hq_address'", hq_address=address)

    async def test_huge_integers(self) -> None:
        """
        Integers with hundreds of digits, where a number or an integer is
        expected, end the turret at start with one line, not an
        OverflowError; so does a config file with a 5,000-digit integer or
        nested too deeply for the JSON reader.
        """
        huge = 10**400
        line = await self.refused("'rampup' must be a number >= 0", rampup=huge)
        self.assertLess(len(line), 400)
        await self.refused("'transaction_timeout'", transaction_timeout=huge)
        await self.refused("'stop_timeout'", stop_timeout=-huge)
        await self.refused("'cannons'", cannons=huge)
        await self.refused("'max_pending_results'", max_pending_results=huge)
        await self.refused("'hq_rc'", hq_rc=huge)
        folder = Path(self.mktemp()).absolute()
        write_config(folder)
        for name, text in [
            ("digits.json", '{"name": "t", "cannons": ' + "9" * 5000 + "}"),
            ("deep.json", '{"name": ' + "[" * 100_000),
        ]:
            (folder / name).write_text(text)
            turret = TurretProcess(["-c", str(folder / name)], cwd=folder)
            self.addCleanup(turret.cleanup)
            self.assertEqual(await turret.wait_exit(), 2, turret.output)
            self.assertNotIn("Traceback", turret.output)
            self.assertEqual(len(turret.output.strip().splitlines()), 1, turret.output)

    async def test_ipv6_hq(self) -> None:
        """
        An HQ on IPv6 (``::1``, with or without brackets) is reached: the
        turret announces itself, fires on ``start`` and obeys ``kill``.
        """
        hq = FakeHQ(host="::1")
        hq.start()
        self.addCleanup(hq.stop)
        for address in ("::1", "[::1]"):
            folder = Path(self.mktemp()).absolute()
            config = write_config(
                folder, script="deferred_sleep.py", **hq.turret_config(hq_address=address, cannons=1)
            )
            turret = TurretProcess(["-c", str(config)], cwd=folder)
            self.addCleanup(turret.cleanup)
            await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses))
            await hq.handshake(turret.uuid)
            count = len(hq.results)
            hq.publish("start", "open fire")
            await hq.wait_for_results(count + 5)
            hq.publish("kill", None)
            self.assertEqual(await turret.wait_exit(), 0, turret.output[-3000:])
            self.assertIn("tcp://[::1]:", turret.output)


class HostilePackageTests(TestCase):
    timeout = 60

    async def test_huge_pax_header_refused(self) -> None:
        """
        A small ``.tar.gz`` whose pax header claims 400 MB is refused at
        start with one line, quickly and without reading the header.
        """
        from tests.test_package import huge_header_archive

        folder = Path(self.mktemp()).absolute()
        folder.mkdir()
        archive = folder / "bomb.tar.gz"
        huge_header_archive(archive, b"x", 400 * 1024 * 1024)
        started = reactor.seconds()
        turret = TurretProcess(["--tar", str(archive)], cwd=folder)
        self.addCleanup(turret.cleanup)
        self.assertEqual(await turret.wait_exit(30), 2, turret.output)
        self.assertLess(reactor.seconds() - started, 20)
        lines = turret.output.strip().splitlines()
        self.assertEqual(len(lines), 1, turret.output)
        self.assertIn("extended header", lines[0])
        self.assertNotIn("Traceback", turret.output)

