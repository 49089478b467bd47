"""
Reliability: backpressure instead of lost results, a blocked reactor is
noticed, and a second signal ends a slow shutdown at once.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from octtwisted import Transaction
from octtwisted._firing.watchdog import ReactorWatchdog
from octtwisted.testing import RecordingSink, make_turret
from tests.helpers import TurretProcess, TurretTestCase


class SlowSink(RecordingSink):
    """
    A sink whose transport takes results only when told to (``drain``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue: list[Any] = []
        self.waiters: list[tuple[int, Deferred[None]]] = []

    def send_result(self, result: Any) -> None:
        self.queue.append(result)

    def pending(self) -> int:
        return len(self.queue)

    def wait_for_room(self, below: int) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.waiters.append((below, d))
        return d

    def drain(self, count: int) -> None:
        for result in self.queue[:count]:
            super().send_result(result)
        del self.queue[:count]
        for below, d in list(self.waiters):
            if len(self.queue) < below:
                self.waiters.remove((below, d))
                d.callback(None)


class BackpressureTests(SynchronousTestCase):
    def test_cannons_pause_and_resume(self) -> None:
        """
        When max_pending_results results wait, the cannons hold back (no
        result is made or dropped); when the queue is down to half they
        resume, and every result made is delivered.
        """
        clock = Clock()
        sink = SlowSink()

        class Quick(Transaction):
            def run(self) -> Deferred[None]:
                return deferLater(clock, 0.1, lambda: None)

        made = make_turret(Quick, clock=clock, sink=sink, cannons=2, max_pending_results=6)
        turret, orders = made.turret, made.orders
        orders.order("start", "open fire")
        clock.pump([0.1] * 20)
        self.assertEqual(len(sink.queue), 6)
        self.assertEqual(turret.results, 6)
        sink.drain(2)
        clock.pump([0.1] * 5)
        self.assertEqual(turret.results, 6, "resumed before the queue was down to half")
        sink.drain(2)
        clock.pump([0.1] * 2)
        self.assertGreater(turret.results, 6)
        stopping = turret.cease_fire()
        clock.pump([0.1] * 3)
        self.successResultOf(stopping)
        sink.drain(len(sink.queue))
        self.assertEqual(len(sink.results), turret.results)
        self.assertEqual(sink.dropped, 0)


class _NoSampler:
    def start(self, ticked: Any) -> None:
        pass

    def stop(self) -> None:
        pass

    def take(self) -> str:
        return ""


class WatchdogTests(SynchronousTestCase):
    def test_blocked_reactor_logged(self) -> None:
        """
        A tick that comes 2 s late logs how long the reactor was blocked;
        on-time ticks log nothing.
        """
        clock = Clock()
        now = [0.0]
        events: list[dict[str, Any]] = []
        dog = ReactorWatchdog(clock, lambda: now[0], interval=0.1, threshold=0.5, sampler=_NoSampler())
        dog.log = Logger(observer=events.append)
        dog.startService()
        for _ in range(10):
            now[0] += 0.1
            clock.advance(0.1)
        self.assertEqual(events, [])
        now[0] += 2.1
        clock.advance(2.1)
        self.assertEqual(len(events), 1)
        self.assertAlmostEqual(events[0]["blocked"], 2.1)
        dog.stopService()


class ProcessReliabilityTests(TurretTestCase):
    timeout = 60
    turret_keys = {"cannons": 1}

    async def test_blocked_reactor_reported(self) -> None:
        """
        A script that blocks the reactor for 1 s is reported as such, naming
        the step that blocked and the advice blocking = True, and the run
        goes on.
        """
        turret = self.launch("blocks_reactor.py", standalone=True, args=("--duration", "1.5"), block=1.0)
        await turret.wait_exit()
        self.assertIn("the reactor was blocked for 1.", turret.output)
        self.assertIn("s in Transaction.run (blocks_reactor.py line 10)", turret.output)
        self.assertIn("set blocking = True on its Transaction class", turret.output)

    async def test_second_sigterm_exits_at_once(self) -> None:
        """
        While a graceful stop waits for a hung transaction (stop timeout
        30 s), a second SIGTERM ends the process at once.
        """
        turret = self.launch("hangs.py", standalone=True, stop_timeout=30)
        await turret.wait_output("open fire")
        turret.signal(signal.SIGTERM)
        await turret.wait_output("running -> stopping")
        turret.signal(signal.SIGTERM)
        code = await turret.wait_exit(timeout=5)
        self.assertEqual(code, 128 + signal.SIGTERM)
        self.assertIn("exiting now", turret.output)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fuzz_frames(count: int = 150) -> list[Any]:
    """
    Frames that are not orders this turret obeys, made by hypothesis:
    random bytes, invalid UTF-8, JSON that is not an object, objects with
    missing, extra or wrongly typed keys, unknown commands, 1 MiB frames, a
    topic alone, an empty frame, and multi-frame messages.
    """
    import json

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from octtwisted._core.messages import COMMANDS

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )
    unknown_command = st.text(max_size=20).filter(lambda c: c not in COMMANDS)
    bad_objects = st.one_of(
        st.fixed_dictionaries({"command": unknown_command, "msg": json_values}),
        st.fixed_dictionaries({"command": json_values.filter(lambda c: not isinstance(c, str)), "msg": json_values}),
        st.fixed_dictionaries({"msg": json_values}),
        st.fixed_dictionaries(
            {"command": st.sampled_from(["start", "stop"]), "msg": st.integers() | st.lists(st.integers(), max_size=2)}
        ),
        st.fixed_dictionaries(
            {"command": st.just("set_transaction_context"), "msg": json_values.filter(lambda m: not isinstance(m, dict))}
        ),
    )
    topics = st.sampled_from([b"", b"other-turret", b"\xff\xfe"])
    single = st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=50).map(lambda b: b"\xff" + b),
        json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: b" " + json.dumps(v).encode()),
        st.tuples(topics, bad_objects).map(lambda t: t[0] + b" " + json.dumps(t[1]).encode()),
        st.just(b" " + b"{" * (1 << 20)),
        st.just(b"topic-only"),
        st.just(b""),
    )
    message = st.one_of(single, st.lists(st.binary(max_size=40), min_size=2, max_size=4))
    frames: list[Any] = []

    @settings(max_examples=count, database=None, suppress_health_check=list(HealthCheck), deadline=None)
    @given(message)
    def collect(frame: Any) -> None:
        frames.append(frame)

    collect()
    return frames


class HQEndToEndReliabilityTests(TurretTestCase):
    timeout = 120
    turret_keys = {"cannons": 3}

    async def test_fuzzed_orders(self) -> None:
        """
        Hypothesis-made junk, sent to a waiting and to a running turret:
        the process stays up, keeps firing and answering status_request,
        and the warnings are rate-limited.
        """
        hq = self.start_hq()
        turret = self.launch(hq=hq)
        frames = fuzz_frames()
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        for frame in frames:
            hq.publish_raw(frame)
        self.assertEqual((await hq.handshake(turret.uuid))["status"], "ready")
        hq.publish("start", "open fire")
        await hq.wait_for_status("Running", turret.uuid)
        await hq.wait_for_results(20)
        for frame in frames:
            hq.publish_raw(frame)
        self.assertEqual((await hq.handshake(turret.uuid))["status"], "Running")
        count = len(hq.results)
        await hq.wait_for_results(count + 100)
        await turret.wait_output("more bad orders ignored and not logged")  # reported every 10 s
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0, turret.output[-3000:])
        warnings = turret.output.count("ignored a bad order")
        self.assertTrue(1 <= warnings <= 10, f"{warnings} warnings for {2 * len(frames)} bad frames")

    async def test_hq_comes_up_later(self) -> None:
        """
        With no HQ at start, the turret waits and keeps announcing; the HQ
        binds its sockets 30 s later and finds it, starts it and gets
        results.
        """
        ports = {"publisher_port": _free_port(), "rc_port": _free_port()}
        turret = self.launch(
            hq_address="127.0.0.1", hq_publisher=ports["publisher_port"], hq_rc=ports["rc_port"]
        )
        await turret.wait_output("ready:")
        await deferLater(reactor, 30, lambda: None)  # the scenario: HQ down for 30 s
        self.assertTrue(turret.running)
        hq = self.start_hq(**ports)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(20)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)

    async def test_internal_failure_aborts(self) -> None:
        """
        A failure the turret cannot survive (a script raising a
        BaseException that is not an Exception) sends ``Aborted`` to the
        HQ, then the process exits with status 70.
        """
        hq = self.start_hq()
        turret = self.launch("fatal.py", hq=hq, cannons=1)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        self.assertEqual(await turret.wait_exit(), 70, turret.output)
        await hq.wait_for_status("Aborted", turret.uuid)
        self.assertIn("EndOfTheWorld", turret.output)


class WarningLimiterTests(SynchronousTestCase):
    def test_burst_per_period(self) -> None:
        """
        5 warnings per 10 s pass; the rest are counted, and the count is
        taken once.
        """
        from octtwisted._hq.ratelimit import WarningLimiter

        clock = Clock()
        limiter = WarningLimiter(clock, burst=5, period=10)
        self.assertEqual([limiter.allow() for _ in range(8)], [True] * 5 + [False] * 3)
        self.assertEqual(limiter.take_suppressed(), 3)
        self.assertEqual(limiter.take_suppressed(), 0)
        clock.advance(10)
        self.assertTrue(limiter.allow())


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _made(turret: TurretProcess) -> int:
    """
    The number of results the turret says it made (its last log line).
    """
    return int(turret.output.split("turret killed: ")[1].split(" results")[0])


class HQTroubleTests(TurretTestCase):
    """
    The HQ restarts, or stalls: every result the turret made arrives, once.
    """

    timeout = 120
    turret_keys = {"cannons": 20}

    def assertConserved(self, hq: Any, turret: TurretProcess) -> None:
        made = _made(turret)
        ids = [(r["epoch"], r["elapsed"]) for r in hq.results]
        self.assertEqual(len(set(ids)), len(ids), "a result arrived twice")
        self.assertEqual(len(hq.results), made, f"results lost; the turret said:\n{turret.output[-6000:]}")
        self.assertNotIn("are dropped", turret.output)

    async def restart_hq(self, unread: bool) -> tuple[Any, TurretProcess, int]:
        """
        Fire at a FakeHQ whose PULL socket closes mid-run (``unread``: after
        it stopped reading for 0.5 s, so that results wait unread in it)
        and is bound again 1 s after the turret noticed; then ``kill``.

        :return: the HQ, the turret and how many results the HQ had read
            when it went away.
        """
        hq = self.start_hq()
        turret = self.launch(hq=hq, args=("--results", "sent.jsonl"))
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(1000)
        if unread:
            hq.pause_results()
            await deferLater(reactor, 0.5, lambda: None)  # the scenario: results pile up unread
        hq.close_results()
        closed_at = len(hq.results)
        self.away_from = time.time()
        await turret.wait_output("lost its connection to the HQ")
        await deferLater(reactor, 1, lambda: None)  # the scenario: the HQ stays away
        self.away_until = time.time()
        hq.reopen_results()
        await hq.wait_for_results(closed_at + 2000)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        # Killed is the last frame on the connection: all that comes, came.
        await hq.wait_for_status("Killed", turret.uuid)
        return hq, turret, closed_at

    def assertOnlyInFlightLost(self, hq: Any, turret: TurretProcess, closed_at: int) -> int:
        """
        What the OCT protocol lets a turret promise when its HQ goes away,
        exactly (see docs/reliability.rst): no result arrives twice; every
        result the turret handed on once it had noticed the loss arrives
        when the HQ is back (those made while it was away included); the
        only results that may be missing are some the turret had handed to
        the closed connection before it noticed, one unbroken stretch
        right where the HQ went away. The turret's own ``--results`` file
        gives the order in which results were sent.

        :return: how many results were lost.
        """
        import json
        import re

        [path] = turret.folder.glob("sent-*.jsonl")
        sent = [json.loads(line) for line in path.read_text().splitlines()]
        received = list(hq.results)
        self.assertEqual(len(sent), _made(turret), "the results file misses results")
        ids = [(r["epoch"], r["elapsed"]) for r in received]
        self.assertEqual(len(set(ids)), len(ids), "a result arrived twice")
        lost = len(sent) - len(received)
        kept = next((i for i, (a, b) in enumerate(zip(sent, received)) if a != b), len(received))
        self.assertGreaterEqual(kept, closed_at, "a result the HQ had read is missing")
        self.assertEqual(
            received,
            sent[:kept] + sent[kept + lost :],
            "results other than one stretch at the HQ's leaving are missing",
        )
        noticed = re.search(r"lost its connection to the HQ at \S+ after (\d+) results", turret.output)
        assert noticed is not None, turret.output
        if lost:
            self.assertLessEqual(
                kept + lost, int(noticed[1]), f"{lost} lost results: some were sent after the turret noticed"
            )
        made_while_away = [r for r in received if self.away_from < r["epoch"] < self.away_until]
        self.assertGreater(len(made_while_away), 0, "no result made while the HQ was away arrived")
        self.assertNotIn("are dropped", turret.output)
        return lost

    async def test_hq_restart_mid_run(self) -> None:
        """
        The HQ's PULL socket closes mid-run and is bound again: results
        made meanwhile arrive after it returns, none twice, and none is
        missing but those in flight when it closed (usually none on one
        machine).
        """
        hq, turret, closed_at = await self.restart_hq(unread=False)
        self.assertOnlyInFlightLost(hq, turret, closed_at)

    async def test_hq_leaves_results_unread(self) -> None:
        """
        An HQ that goes away with results it has not read (they were in its
        socket) loses them, and no turret can know it: the turret's loss is
        exactly one stretch it had sent before it noticed, and everything
        after arrives once.
        """
        hq, turret, closed_at = await self.restart_hq(unread=True)
        lost = self.assertOnlyInFlightLost(hq, turret, closed_at)
        self.assertGreater(lost, 0, "the results the HQ left unread were not lost: the scenario did not happen")

    async def test_results_after_stop_do_not_reach_next_run(self) -> None:
        """
        Like the real HQ, publish ``stop`` and stop reading at once: the
        results the turret finishes after that are discarded (logged), not
        kept for the next HQ, whose run gets only its own results.
        """
        hq = self.start_hq()
        turret = self.launch("style_deferred.py", hq=hq, wait=0.2)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(100)
        hq.publish("stop", "premature stop")
        hq.close_results()
        await turret.wait_output("the HQ left after the run")
        hq.reopen_results()
        first_run = len(hq.results)
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses))
        await hq.handshake(turret.uuid)
        started = time.time()
        hq.publish("start", "open fire")
        await hq.wait_for_results(first_run + 100)
        second_run = hq.results[first_run:]
        early = [r for r in second_run if r["epoch"] < started - 0.05]
        self.assertEqual(early, [], f"{len(early)} results of the first run reached the second")
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)

    async def test_stalled_hq(self) -> None:
        """
        An HQ that stops reading: the turret's queue reaches its bound, the
        cannons pause (memory stays flat), and when the HQ reads again they
        resume and everything arrives.

        The HQ's queue is bounded (500 messages), so its ZeroMQ stops
        reading too and the turret's pings wait behind the results: a stall
        longer than ``hq_silence_timeout`` (20 s) is taken for a dead HQ
        (docs/reliability.rst). The stall lasts while every buffer between
        the two fills (about 50,000 results), then 3 s: quick transactions
        fill them in a second or two, 10 ms ones took 20 to 30 s and
        sometimes crossed the 20 s.
        """
        hq = self.start_hq(receive_hwm=500)
        turret = self.launch(hq=hq, script="quick.py", max_pending_results=3000)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(500)
        hq.pause_results()
        await turret.wait_output("cannons paused")
        pid = turret.transport.pid
        rss_paused = _rss_kib(pid)
        await deferLater(reactor, 3, lambda: None)  # stay stalled a while
        self.assertLess(_rss_kib(pid), rss_paused * 1.05 + 1024, "memory grew while paused")
        hq.resume_results()
        self.assertNotIn("lost its connection", turret.output, "the stall outlasted hq_silence_timeout")
        await turret.wait_output("cannons resume")
        count = len(hq.results)
        await hq.wait_for_results(count + 1000)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0)
        # Killed is the last frame on the connection: all that comes, came.
        await hq.wait_for_status("Killed", turret.uuid)
        self.assertConserved(hq, turret)


class SignalTests(TurretTestCase):
    timeout = 60

    async def check_signal(self, number: int, start: bool) -> None:
        hq = self.start_hq()
        turret = self.launch(hq=hq, stop_timeout=3)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        if start:
            hq.publish("start", "open fire")
            await hq.wait_for_results(50)
        began = reactor.seconds()
        turret.signal(number)
        await turret.wait_exit(timeout=3 + 2)
        self.assertLess(reactor.seconds() - began, 3 + 2)
        final = await hq.wait_for_status("Killed", turret.uuid)
        self.assertEqual(final["status"], "Killed")
        if start:
            made = int(turret.output.split("turret stopped: ")[1].split(" results")[0])
            await hq.wait_for_results(made, timeout=5)
            self.assertEqual(len(hq.results), made)

    async def test_sigterm_waiting(self) -> None:
        """
        SIGTERM while waiting: final status sent, prompt exit.
        """
        await self.check_signal(signal.SIGTERM, start=False)

    async def test_sigint_waiting(self) -> None:
        """
        SIGINT while waiting: final status sent, prompt exit.
        """
        await self.check_signal(signal.SIGINT, start=False)

    async def test_sigint_running(self) -> None:
        """
        SIGINT while firing: every result and the final status reach the
        HQ, within the stop timeout plus 2 s.
        """
        await self.check_signal(signal.SIGINT, start=True)
