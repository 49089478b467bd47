"""
Exhausted resources and slow targets (issue 26, items 3, 4 and 5), through
the real ``twistd oct-turret`` process obeying a FakeHQ:

- more ``fast_http`` cannons than file descriptors (``ulimit -n 1024``,
  set by ``tests/rlimited.py``), and more blocking cannons than threads;
- the bounds on ``cannons`` and on blocking cannons;
- targets that accept and never answer, or answer a byte a second;
- a storm of refused connections.

Each test counts what the issue asks for (descriptors in
``/proc/PID/fd``, the status answer's latency, RSS, log lines) and prints
the figures.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core.config import (
    DEFAULT_MAX_BLOCKING_CANNONS,
    DEFAULT_MAX_CANNONS,
    ConfigError,
    check_blocking_cannons,
    load_config,
)
from octtwisted._http.fast import descriptors as descriptors_module
from octtwisted._http.fast.descriptors import DescriptorBudget
from octtwisted.fasthttp import ConnectError, FastHTTPClient
from tests.helpers import TurretProcess, TurretTestCase, write_config
from tests.hostilehttp import HostileHTTP

RLIMITED = [sys.executable, str(Path(__file__).parent / "rlimited.py")]


def fd_count(pid: int) -> int:
    """Descriptors the process ``pid`` holds (``/proc/PID/fd``); -1 once it is gone."""
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return -1


def rss_kib(pid: int) -> int:
    """The process's resident set now (VmRSS), in KiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sleep(seconds: float) -> Any:
    return deferLater(reactor, seconds, lambda: None)


class _ExhaustionCase(TurretTestCase):
    timeout = 180

    def setUp(self) -> None:
        self.hq = self.start_hq()

    async def ready(self, turret: TurretProcess) -> int:
        """Wait until ``turret`` is ready and hears the HQ; its pid."""
        assert self.hq is not None
        await self.hq.wait_for_status("ready", turret.uuid, timeout=60)
        await self.hq.handshake(turret.uuid, timeout=30)
        pid = turret.transport.pid
        assert pid is not None
        return pid

    async def status_latency(self, turret: TurretProcess) -> float:
        """Publish one ``status_request``; seconds until the turret's answer came."""
        hq = self.hq
        assert hq is not None
        seen = sum(1 for s in hq.statuses if s.get("uuid") == turret.uuid)
        started = reactor.seconds()
        hq.publish("status_request", None)
        await hq.wait_until(
            lambda: True if sum(1 for s in hq.statuses if s.get("uuid") == turret.uuid) > seen else None,
            30, "status answer",
        )
        return reactor.seconds() - started

    async def settle_fds(self, pid: int, target: int, within: float = 30.0) -> int:
        """Poll ``pid``'s descriptors until at most ``target`` (or ``within`` s); the last count."""
        count = fd_count(pid)
        waited = 0.0
        while count > target and waited < within:
            await sleep(0.25)
            waited += 0.25
            count = fd_count(pid)
        return count

    async def stop_and_kill(self, turret: TurretProcess) -> None:
        assert self.hq is not None
        self.hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(60), 0, turret.output[-3000:])


class FileDescriptorTests(_ExhaustionCase):
    async def test_fast_http_cannons_past_ulimit(self) -> None:
        """
        2,000 ``fast_http`` cannons against a target that never answers
        (their requests wait 120 s), under ``ulimit -n 1024``: the requests past the limit fail with
        ``too many open files (ulimit -n 1024)``, and the log says once
        which limit to raise; the turret answers ``status_request``
        throughout, and its results connection to the HQ reconnects while
        every descriptor the cannons may have is taken (the HQ closes and
        binds its PULL socket again: results flow again); after ``stop``
        the turret holds the descriptors it held before ``start``; no
        traceback. Before issue 26 the text was Twisted's ``Couldn't bind:
        24: Too many open files.`` with nothing logged, and the cannons took
        every descriptor: ZeroMQ could not reconnect to the HQ until a
        request gave one back.
        """
        hq = self.hq
        assert hq is not None
        server = HostileHTTP("silent")
        port = server.start()
        self.addCleanup(server.stop)
        turret = self.launch(
            "hostile_get.py", cannons=2000, url=f"http://127.0.0.1:{port}/", request_timeout=120,
            stop_timeout=2, progress_interval=0, prefix=[*RLIMITED, "--nofile", "1024", "--"],
        )
        pid = await self.ready(turret)
        before = fd_count(pid)
        hq.publish("start", "open fire")
        fragment = "too many open files (ulimit -n 1024)"
        await hq.wait_until(
            lambda: True if any(fragment in r.get("error", "") for r in hq.results[-50:]) else None,
            60, "a 'too many open files' result",
        )
        during = max(fd_count(pid) for _ in range(5))
        latency = await self.status_latency(turret)
        # The HQ goes away and comes back while the cannons hold every
        # descriptor they may: ZeroMQ must find one to reconnect.
        hq.close_results()
        await sleep(1)
        hq.reopen_results()
        count = len(hq.results)
        # (The target holds every connection for 120 s: without descriptors
        # kept out of the cannons' reach, none is freed for ZeroMQ.)
        await hq.wait_until(lambda: True if len(hq.results) > count + 100 else None, 30, "results again")
        later = await self.status_latency(turret)
        hq.publish("stop", None)
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=60)
        after = await self.settle_fds(pid, before)
        print(f"\ndescriptors: before {before}, during {during}, after stop {after} "
              f"(ulimit -n 1024); status answered in {latency:.3f}s, {later:.3f}s after the HQ came back")
        errors = [r["error"] for r in hq.results if r.get("error")]
        self.assertTrue(any(e.startswith("ConnectError: " + fragment) for e in errors), errors[:5])
        self.assertGreater(during, 900)
        self.assertLessEqual(during, 1024 - 32)  # some kept for the HQ link and files
        self.assertLessEqual(after, before)
        output = turret.output
        self.assertEqual(output.count("out of file descriptors"), 1, output[-3000:])
        self.assertIn("ulimit -n", output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("Unhandled", output)
        await self.stop_and_kill(turret)


class ThreadExhaustionTests(_ExhaustionCase):
    async def test_blocking_cannons_past_thread_limit(self) -> None:
        """
        5,000 cannons of a blocking script in a process that may start only
        200 threads (the script makes ``Thread.start`` fail past them, as
        CPython's does when the system refuses one: as root, ``ulimit -u``
        is not enforced): every cannon comes in, those without a thread
        report ``cannot start the cannon's thread: can't start new
        thread`` and try again, the others fire; one log line; the turret
        answers ``status_request``, stops and exits cleanly. Before issue
        26 the first refused thread raised out of the ramp-up (a critical
        traceback) and the cannons after it never came in.
        """
        hq = self.hq
        assert hq is not None
        turret = self.launch("classic_thread_limit.py", cannons=5000, progress_interval=0)
        await self.ready(turret)
        hq.publish("start", "open fire")
        await hq.wait_until(
            lambda: True if any("cannot start the cannon's thread" in r.get("error", "")
                                for r in hq.results[-50:]) else None,
            60, "a 'cannot start the cannon's thread' result",
        )
        await hq.wait_until(lambda: True if any(not r.get("error") for r in hq.results) else None, 60, "a success")
        latency = await self.status_latency(turret)
        hq.publish("stop", None)
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=60)
        print(f"\nstatus answered in {latency:.3f}s; {len(hq.results)} results")
        errors = {r["error"] for r in hq.results if r.get("error")}
        self.assertEqual(errors, {"cannot start the cannon's thread: can't start new thread"})
        output = turret.output
        self.assertEqual(output.count("cannot start a thread for a blocking cannon"), 1, output[-3000:])
        self.assertIn("all 5000 cannons firing", output)
        self.assertNotIn("Traceback", output)
        await self.stop_and_kill(turret)


class CannonBoundTests(SynchronousTestCase):
    def test_cannons_bound(self) -> None:
        """
        ``cannons`` above ``max_cannons`` (100,000 unless the config says
        more) is a one-line config error naming both keys; a config that
        raises ``max_cannons`` may go past it.
        """
        folder = Path(self.mktemp())
        self.assertEqual(DEFAULT_MAX_CANNONS, 100_000)
        load_config(write_config(folder, cannons=100_000))
        with self.assertRaises(ConfigError) as caught:
            load_config(write_config(folder, cannons=10_000_000))
        message = str(caught.exception)
        self.assertIn("key 'cannons' is 10000000, over the bound of 100000 (max_cannons)", message)
        self.assertNotIn("\n", message)
        self.assertEqual(load_config(write_config(folder, cannons=200_000, max_cannons=200_000)).cannons, 200_000)
        with self.assertRaises(ConfigError):
            load_config(write_config(folder, max_cannons=0))

    def test_blocking_cannons_bound(self) -> None:
        """
        A blocking script's cannons in one process (the config's shared by
        the processes) above ``max_blocking_cannons`` (10,000) is a
        one-line config error; a non-blocking script's are not bound by it.
        """
        folder = Path(self.mktemp())
        config = load_config(write_config(folder, cannons=20_000))
        self.assertEqual(config.max_blocking_cannons, DEFAULT_MAX_BLOCKING_CANNONS)
        check_blocking_cannons(config, False, 1)
        check_blocking_cannons(config, True, 2)
        with self.assertRaises(ConfigError) as caught:
            check_blocking_cannons(config, True, 1)
        self.assertIn("over the bound of 10000 threads (max_blocking_cannons)", str(caught.exception))
        check_blocking_cannons(config, True, 3)  # 6,667 each
        with self.assertRaises(ConfigError) as caught:
            check_blocking_cannons(load_config(write_config(folder, cannons=30_000)), True, 2)
        self.assertIn("15000 in one process", str(caught.exception))
        raised = load_config(write_config(folder, cannons=20_000, max_blocking_cannons=20_000))
        check_blocking_cannons(raised, True, 1)


class CannonBoundProcessTests(TurretTestCase):
    timeout = 60

    async def test_refused_through_the_process(self) -> None:
        """
        Through the real process: 10,000,000 cannons, and 10,001 of a
        blocking script, end the turret at start with one line and exit
        status 2, before it connects to anything.
        """
        for script, cannons in (("deferred_sleep.py", 10_000_000), ("classic.py", 10_001)):
            turret = self.launch(script, cannons=cannons)
            self.assertEqual(await turret.wait_exit(30), 2, turret.output)
            lines = turret.output.strip().splitlines()
            self.assertEqual(len(lines), 1, turret.output)
            self.assertIn("max_", lines[0])


class DescriptorBudgetTests(SynchronousTestCase):
    def test_budget(self) -> None:
        """
        The budget keeps 64 descriptors (a quarter under a small limit)
        and those open at its first use out of the connections' reach;
        past it ``take`` refuses, ``release`` gives one back; the first
        refusal of the process is logged once, naming the limit.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        budget = DescriptorBudget(limit=lambda: 1024, count_open=lambda: 60)
        taken = 0
        while budget.take():
            taken += 1
        self.assertEqual(taken, 1024 - 64 - 60)
        self.assertEqual(budget.exhausted(), "too many open files (ulimit -n 1024)")
        self.assertEqual(budget.exhausted(), "too many open files (ulimit -n 1024)")
        budget.release()
        self.assertTrue(budget.take())
        self.assertFalse(budget.take())
        told = [e for e in events if "out of file descriptors" in e.get("log_format", "")]
        self.assertEqual(len(told), 1)
        self.assertEqual(told[0]["limit"], 1024)
        small = DescriptorBudget(limit=lambda: 100, count_open=lambda: 10)
        self.assertEqual(sum(1 for _ in iter(small.take, False)), 100 - 25 - 10)
        unlimited = DescriptorBudget(limit=lambda: 1 << 30, count_open=lambda: 10)
        self.assertTrue(all(unlimited.take() for _ in range(10_000)))
        self.assertEqual(unlimited.text(), "too many open files")


class FastClientExhaustionTests(TestCase):
    timeout = 30

    async def test_budget_refuses_past_the_ceiling(self) -> None:
        """
        With a budget of 5 connections (limit 100, 25 kept, 70 open), 10
        requests to a silent target open 5 connections; the other 5 fail at
        once with ``ConnectError: too many open files (ulimit -n 100)``;
        closing the client gives every descriptor back to the budget.
        """
        budget = DescriptorBudget(limit=lambda: 100, count_open=lambda: 70)
        self.patch(descriptors_module, "DESCRIPTORS", budget)
        server = HostileHTTP("silent")
        port = server.start()
        self.addCleanup(server.stop)
        client = FastHTTPClient(reactor, timeout=5, connections_per_host=10)
        requests = [client.get(f"http://127.0.0.1:{port}/") for _ in range(10)]
        self.assertEqual(budget.open, 5)
        failed = await defer.DeferredList(requests[5:], consumeErrors=True)
        for ok, failure in failed:
            self.assertFalse(ok)
            failure.trap(ConnectError)
            self.assertEqual(str(failure.value), f"too many open files (ulimit -n 100): 127.0.0.1:{port}")
        self.assertEqual(budget.refused, 5)
        for d in requests[:5]:
            d.addErrback(lambda _: None)
        await client.close()
        self.assertEqual(budget.open, 0)

    def test_emfile_reason(self) -> None:
        """The system's EMFILE on connect reads ``too many open files (ulimit -n N)``."""
        import errno

        from twisted.internet.error import ConnectBindError
        from twisted.python.failure import Failure

        from octtwisted._http.fast.errors import connect_reason

        reason = connect_reason(Failure(ConnectBindError(errno.EMFILE, "Too many open files")), 5)
        self.assertTrue(reason.startswith("too many open files"), reason)

    async def test_refused_attempt_leaves_no_cycle(self) -> None:
        """
        A refused connection attempt's transport is freed by reference
        counting alone (the garbage collector off): before issue 26
        Twisted's failed attempt pointed its doRead and doWrite at itself,
        a cycle that waited for a full collection.
        """
        import gc
        import weakref

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
        probe.close()
        attempts: list[Any] = []
        real = reactor.connectTCP

        def connect(*args: Any, **kwargs: Any) -> Any:
            connector = real(*args, **kwargs)
            attempts.append(weakref.ref(connector.transport))
            return connector

        self.patch(reactor, "connectTCP", connect)
        client = FastHTTPClient(reactor, timeout=5)
        self.addCleanup(client.close)
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        with self.assertRaises(ConnectError):
            await client.get(f"http://127.0.0.1:{closed_port}/")
        await sleep(0)
        self.assertEqual(len(attempts), 1)
        self.assertIsNone(attempts[0](), "the failed attempt's transport is still alive")


class SlowTargetTests(_ExhaustionCase):
    cannons = 50

    async def slow_target(self, mode: str, **keys: Any) -> None:
        """
        ``cannons`` cannons against a ``mode`` target for several timeout
        periods of 1 s: each transaction ends with ``timeout after 1s``
        within a generous second of it, the target sees the connections
        closed, the turret never holds more descriptors than its own plus
        one per cannon, and after ``stop`` holds what it held before.
        """
        hq = self.hq
        assert hq is not None
        server = HostileHTTP(mode)
        port = server.start()
        self.addCleanup(server.stop)
        turret = self.launch("hostile_get.py", cannons=self.cannons, url=f"http://127.0.0.1:{port}/",
                             progress_interval=0, **keys)
        pid = await self.ready(turret)
        before = fd_count(pid)
        first = len(hq.results)
        hq.publish("start", "open fire")
        counts = []
        for _ in range(24):  # 6 s: six timeout periods
            await sleep(0.25)
            counts.append(fd_count(pid))
        during = max(counts)
        hq.publish("stop", None)
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=60)
        after = await self.settle_fds(pid, before)
        results = hq.results[first:]
        print(f"\n{mode} {keys}: descriptors before {before}, during (max) {during}, after stop {after}; "
              f"{len(results)} results, {server.connections} connections, {server.closed} closed")
        self.assertGreaterEqual(len(results), 4 * self.cannons)
        for result in results:
            self.assertIn("timeout after 1s", result["error"])
            self.assertGreaterEqual(result["scriptrun_time"], 0.9, result)
            self.assertLess(result["scriptrun_time"], 2.5, result)
        self.assertLessEqual(during, before + self.cannons)
        self.assertLessEqual(after, before)
        self.assertGreaterEqual(server.closed, len(results) - self.cannons)
        self.assertNotIn("Traceback", turret.output)
        await self.stop_and_kill(turret)

    async def test_silent_target_transaction_timeout(self) -> None:
        """A target that accepts and never answers, cut by ``transaction_timeout: 1`` (see slow_target)."""
        await self.slow_target("silent", transaction_timeout=1)

    async def test_silent_target_request_timeout(self) -> None:
        """The same, cut by the request's own ``timeout=1``."""
        await self.slow_target("silent", request_timeout=1)

    async def test_trickling_target(self) -> None:
        """A target that answers one byte a second, cut by both timeouts (see slow_target)."""
        await self.slow_target("trickle", transaction_timeout=1)
        await self.slow_target("trickle", request_timeout=1)


class RefusedStormTests(_ExhaustionCase):
    async def test_refused_storm(self) -> None:
        """
        500 cannons against a closed port for 10 s: error results
        (``connection refused``) come as fast as the turret makes them;
        the ``status_request`` sent every 0.5 s are answered within 1 s
        (one may be late, by the test process's own load); RSS
        stays flat (the second half's peak within 12 MiB of the first
        half's: before issue 26 each refused attempt left a reference cycle
        for the minute's full collection, and RSS grew by about 5 MiB/s); the log gets no line per error (at most a handful during
        the storm, none of them about the refusals).
        """
        hq = self.hq
        assert hq is not None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
        probe.close()
        # A short queue: if this (loaded) test process reads the results
        # slowly, the turret's queue must not pass for a leak.
        turret = self.launch("hostile_get.py", cannons=500, url=f"http://127.0.0.1:{closed_port}/",
                             progress_interval=0, max_pending_results=2000)
        pid = await self.ready(turret)
        lines_before = len(turret.output.splitlines())
        hq.publish("start", "open fire")
        started = reactor.seconds()
        latencies: list[float] = []
        rss: list[int] = []
        while reactor.seconds() - started < 10:
            latencies.append(await self.status_latency(turret))
            rss.append(rss_kib(pid))
            await sleep(0.5)
        made = len(hq.results)
        storm_lines = turret.output.splitlines()[lines_before:]
        hq.publish("stop", None)
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=60)
        half = max(rss[: len(rss) // 2])
        peak = max(rss)
        latencies.sort()
        print(f"\nrefused storm: {made} results in 10 s; status answered in median "
              f"{latencies[len(latencies) // 2]:.3f}s, max {latencies[-1]:.3f}s over {len(latencies)} requests; "
              f"RSS {rss[0] // 1024} MiB at start, {half // 1024} MiB first-half peak, {peak // 1024} MiB peak; "
              f"{len(storm_lines)} log lines during the storm")
        self.assertGreater(made, 5000)
        self.assertTrue(all("connection refused" in r["error"] for r in hq.results[:made]))
        # Within 1 s (the test's own process reads every result too: one
        # late answer is allowed for its being descheduled, not two).
        self.assertLess(latencies[-2], 1.0, latencies)
        self.assertLess(latencies[-1], 3.0, latencies)
        self.assertLess(peak - half, 12 * 1024, rss)
        self.assertLessEqual(len(storm_lines), 5, storm_lines)
        self.assertFalse([line for line in storm_lines if "refused" in line], storm_lines)
        await self.stop_and_kill(turret)

