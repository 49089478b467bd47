"""
Fast unit tests of a blocking script's cannon (its thread played by the
test: work handed to the thread runs when the test says so), of the
Mailbox, and of the rule that decides where a script's steps run.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.clocks import Clocks
from octtwisted._core.messages import Result
from octtwisted._firing import thread_side as threaded
from octtwisted._firing.cannon import Cannon, CannonSettings
from octtwisted._firing.steps import ThreadedCannonFactory
from octtwisted._firing.threaded import threaded_cannon
from octtwisted._firing.threads import CannonThread, Mailbox
from octtwisted._scripts.loading import decide
from octtwisted._scripts.transaction import Transaction


class PlayedThread:
    """
    A Worker whose work runs when the test calls :meth:`run`.
    """

    def __init__(self, name: str = "") -> None:
        self.work: list[Callable[[], None]] = []
        self.closed = False
        #: what start() answers (a system that refuses the thread: its reason)
        self.refusals: list[str] = []

    def start(self) -> str:
        return self.refusals.pop(0) if self.refusals else ""

    def submit(self, work: Callable[[], None]) -> None:
        self.work.append(work)

    def close(self) -> None:
        self.closed = True

    def run(self) -> None:
        work, self.work = self.work, []
        for piece in work:
            piece()


class FakeReactor(Clock):
    """
    A Clock whose callFromThread calls wait until :meth:`wake`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.wakeups: list[Callable[[], None]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.wakeups.append(lambda: f(*args))

    def wake(self) -> int:
        calls, self.wakeups = self.wakeups, []
        for call in calls:
            call()
        return len(calls)


class Script:
    """
    A transaction whose run does what the test says, advancing the clock.
    """

    def __init__(self, clock: FakeReactor, takes: float = 0.0, returns: Any = None) -> None:
        self.clock = clock
        self.takes = takes
        self.returns = returns
        self.custom_timers: dict[str, float] = {}
        self.during_run: Callable[[], None] | None = None
        self.runs = 0

    def run(self) -> Any:
        self.runs += 1
        self.custom_timers["mine"] = 1.0
        if self.during_run is not None:
            during, self.during_run = self.during_run, None
            during()
        # Time passes in 0.1 s steps, so timers fire when they are due.
        left = self.takes
        while left > 1e-9:
            step = min(0.1, left)
            self.clock.advance(step)
            left -= step
        return self.returns


class ThreadedCannonTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.clocks = Clocks.fake(self.reactor)
        self.mailbox = Mailbox(self.reactor)
        self.results: list[Result] = []
        self.misuses: list[str] = []
        self.left: list[int] = []

    def cannon(self, script: Script, **kwargs: Any) -> tuple[Cannon, PlayedThread]:
        worker = PlayedThread()
        settings = CannonSettings(
            index=0,
            turret_name="t",
            make_transaction=lambda: script,
            clocks=self.clocks,
            report=self.results.append,
            started_at=0.0,
            **kwargs,
        )
        cannon = threaded_cannon(
            settings,
            worker,
            self.mailbox,
            on_misuse=self.misuses.append,
            on_left_behind=lambda: self.left.append(1),
        )
        return cannon, worker

    def test_burst_in_the_thread_one_wakeup(self) -> None:
        """
        One LoopingCall iteration hands the thread a burst: the thread
        runs transactions back to back, timed in the thread, until the
        burst's time is up; two cannons' bursts reach the reactor with one
        wake-up; nothing is reported before it.
        """
        scripts = [Script(self.reactor, takes=0.004) for _ in range(2)]
        pairs = [self.cannon(s) for s in scripts]
        for cannon, _ in pairs:
            cannon.start()
        for _, worker in pairs:
            worker.run()
        self.assertEqual(self.results, [])
        self.assertEqual(self.reactor.wake(), 1)
        # 0.004 s each, burst of THREAD_BURST_SECONDS = 0.01: three each.
        self.assertEqual(len(self.results), 6)
        for result in self.results:
            self.assertAlmostEqual(result.scriptrun_time, 0.004)
        self.assertEqual({r.error for r in self.results}, {""})
        self.assertEqual({tuple(r.custom_timers) for r in self.results}, {("mine",)})
        self.assertEqual([c.fired for c, _ in pairs], [3, 3])
        # The LoopingCall goes on: the next burst is handed over.
        self.reactor.advance(0)
        self.assertEqual([len(w.work) for _, w in pairs], [1, 1])

    def test_waiting_for_the_thread_is_not_run_time(self) -> None:
        """
        Time between handing the burst over and the thread taking it up is
        not counted: scriptrun_time is run's own, and elapsed is when the
        transaction really started.
        """
        cannon, worker = self.cannon(Script(self.reactor, takes=0.05))
        cannon.start()
        self.reactor.advance(0.3)  # the thread is slow to start
        worker.run()
        self.reactor.wake()
        self.assertEqual(len(self.results), 1)
        self.assertAlmostEqual(self.results[0].scriptrun_time, 0.05)
        self.assertAlmostEqual(self.results[0].elapsed, 0.3)

    def test_timed_out_run_cannot_touch_the_next_timers(self) -> None:
        """
        A run that times out goes on in the thread; the next transaction
        only starts when it has returned (same thread), so the late run's
        timers are never in the next result.
        """
        class Late(Script):
            def run(self) -> Any:
                result = super().run()
                if self.takes:
                    self.custom_timers["late"] = self.takes  # after its timeout
                return result

        script = Late(self.reactor, takes=0.3)
        cannon, worker = self.cannon(script, transaction_timeout=0.1)
        cannon.start()
        worker.run()
        self.reactor.wake()
        self.reactor.advance(0)
        script.takes = 0.0
        script.returns = None
        worker.run()
        self.reactor.wake()
        self.assertEqual(self.results[0].error, "timeout after 0.1s")
        self.assertEqual(self.results[0].custom_timers, {})
        later = self.results[1:]
        self.assertTrue(later)
        for result in later:
            self.assertEqual(result.error, "")
            self.assertEqual(dict(result.custom_timers), {"mine": 1.0})
            self.assertGreaterEqual(result.elapsed, 0.3)

    def test_burst_count_limit(self) -> None:
        """
        Transactions that take no time run THREAD_BURST to a burst.
        """
        cannon, worker = self.cannon(Script(self.reactor))
        cannon.start()
        worker.run()
        self.reactor.wake()
        self.assertEqual(len(self.results), threaded.THREAD_BURST)

    def test_deferred_from_a_thread_is_an_error(self) -> None:
        """
        A run in a thread that returns a Deferred is an error result naming
        blocking = False (never a success), and the misuse is told.
        """
        cannon, worker = self.cannon(Script(self.reactor, takes=0.02, returns=Deferred()))
        cannon.start()
        worker.run()
        self.reactor.wake()
        self.assertEqual(len(self.results), 1)
        self.assertIn("run() returned a Deferred", self.results[0].error)
        self.assertIn("set blocking = False", self.results[0].error)
        self.assertEqual(len(self.misuses), 1)

    def test_coroutine_from_a_thread_is_closed_and_an_error(self) -> None:
        """
        A coroutine returned in a thread is closed (no "never awaited"
        warning) and is an error result.
        """
        async def body() -> None:
            pass

        coroutine = body()
        cannon, worker = self.cannon(Script(self.reactor, takes=0.02, returns=coroutine))
        cannon.start()
        worker.run()
        self.reactor.wake()
        self.assertIn("run() returned a coroutine (async def)", self.results[0].error)
        self.assertIsNone(coroutine.cr_frame)

    def test_timeout_reported_when_the_time_is_up(self) -> None:
        """
        transaction_timeout: a run still going at the timeout is reported
        by the reactor then ("timeout after 0.5s", timed 0.5 s, no custom
        timers); when it returns, the thread drops its own result.
        """
        script = Script(self.reactor, takes=2.0)
        cannon, worker = self.cannon(script, transaction_timeout=0.5)
        cannon.start()
        # The clock moves in run(): at 0.5 s the reactor's check claims it.
        worker.run()
        self.assertEqual(len(self.results), 1)
        self.assertEqual(self.results[0].error, "timeout after 0.5s")
        self.assertAlmostEqual(self.results[0].scriptrun_time, 0.5)
        self.assertEqual(self.results[0].custom_timers, {})
        self.reactor.wake()
        self.assertEqual(len(self.results), 1)
        self.assertEqual(cannon.fired, 1)

    def test_stop_waits_for_the_burst(self) -> None:
        """
        stop() during a burst: the thread ends the burst after the
        transaction it is in; the cannon has stopped when it comes back,
        and its thread is closed.
        """
        script = Script(self.reactor, takes=0.001)
        cannon, worker = self.cannon(script)
        cannon.start()
        stopped: list[Deferred[None]] = []
        script.during_run = lambda: stopped.append(cannon.stop())
        worker.run()
        self.assertEqual(script.runs, 1)
        self.assertNoResult(stopped[0])
        self.reactor.wake()
        self.successResultOf(stopped[0])
        self.assertEqual(len(self.results), 1)
        self.assertTrue(worker.closed)

    def test_cancel_at_the_stop_timeout(self) -> None:
        """
        cancel_in_flight while run never returns: the transaction is
        reported cancelled at once, the cannon stops without its thread,
        which is counted as left behind; if the step returns after all, its
        result is dropped.
        """
        script = Script(self.reactor, takes=1.0)
        cannon, worker = self.cannon(script)
        cannon.start()
        stopped: list[Deferred[None]] = []

        def stuck() -> None:
            stopped.append(cannon.stop())
            cannon.cancel_in_flight("cancelled: still running at the stop timeout (10s)")
            self.successResultOf(stopped[0])

        script.during_run = stuck
        worker.run()
        self.assertEqual([r.error for r in self.results], ["cancelled: still running at the stop timeout (10s)"])
        self.assertEqual(self.left, [1])
        self.reactor.wake()
        self.assertEqual(len(self.results), 1)

    def test_pacing_and_backpressure(self) -> None:
        """
        With pacing, a burst is one transaction and the next starts a
        period after the last one began; a throttle holds the next burst
        back until it fires.
        """
        hold: list[Deferred[None]] = []
        script = Script(self.reactor, takes=0.3)
        cannon, worker = self.cannon(script, pacing=1.0, throttle=lambda: hold[0] if hold else None)
        cannon.start()
        worker.run()
        self.reactor.wake()
        self.assertEqual(len(self.results), 1)
        self.reactor.advance(0.69)
        self.assertEqual(worker.work, [])
        hold.append(Deferred())
        self.reactor.advance(0.01)
        self.assertEqual(worker.work, [])
        gate = hold.pop()
        gate.callback(None)
        self.reactor.advance(0)
        self.assertEqual(len(worker.work), 1)
        worker.run()
        self.reactor.wake()
        self.assertEqual([round(r.elapsed, 6) for r in self.results], [0.0, 1.0])

    def test_constructor_failure_retried_later(self) -> None:
        """
        A Transaction() that raises is an error result, tried again a
        second later (not in a flood).
        """
        worker = PlayedThread()

        def broken() -> Any:
            raise OSError("no config")

        cannon = threaded_cannon(
            CannonSettings(
                index=0, turret_name="t", make_transaction=broken,
                clocks=self.clocks, report=self.results.append, started_at=0.0,
            ),
            worker, self.mailbox,
        )
        cannon.start()
        worker.run()
        self.reactor.wake()
        self.assertEqual([r.error for r in self.results], ["Transaction() failed: OSError: no config"])
        self.reactor.advance(0.99)
        self.assertEqual(worker.work, [])
        self.reactor.advance(0.01)
        self.assertEqual(len(worker.work), 1)

    def test_thread_refused_is_an_error_result_and_retried(self) -> None:
        """
        A cannon whose thread the system refuses reports ``cannot start the
        cannon's thread: ...`` (and tells ``on_no_thread``), then tries
        again a second later; once the thread starts, it fires.
        """
        worker = PlayedThread()
        worker.refusals = ["can't start new thread"] * 2
        told: list[str] = []
        script = Script(self.reactor)
        cannon = threaded_cannon(
            CannonSettings(
                index=0, turret_name="t", make_transaction=lambda: script,
                clocks=self.clocks, report=self.results.append, started_at=0.0,
            ),
            worker, self.mailbox, on_no_thread=told.append,
        )
        cannon.start()
        self.assertEqual([r.error for r in self.results], ["cannot start the cannon's thread: can't start new thread"])
        self.assertEqual(worker.work, [])
        self.reactor.advance(0.99)
        self.assertEqual(len(self.results), 1)
        self.reactor.advance(0.01)
        self.assertEqual(len(self.results), 2)
        self.assertEqual(told, ["can't start new thread"] * 2)
        self.reactor.advance(1.0)
        self.assertEqual(len(worker.work), 1)
        worker.run()
        self.reactor.wake()
        self.assertEqual(script.runs, threaded.THREAD_BURST)
        self.assertEqual(len(self.results), 2 + threaded.THREAD_BURST)

    def test_cannon_thread_refused(self) -> None:
        """
        CannonThread says why the system refused its thread (CPython's
        ``RuntimeError``), and starts it when asked again and allowed.
        """
        import threading

        real = threading.Thread.start
        calls: list[int] = []

        def refused(thread: threading.Thread) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("can't start new thread")
            real(thread)

        self.patch(threading.Thread, "start", refused)
        worker = CannonThread("oct-cannon-test")
        self.assertEqual(worker.start(), "")
        self.assertEqual(len(calls), 2)
        ran = threading.Event()
        worker.submit(ran.set)
        self.assertTrue(ran.wait(10))
        worker.close()

    def test_crash_in_the_thread_reaches_on_crash(self) -> None:
        """
        A BaseException that is not an Exception ends the cannon through
        on_crash (the turret aborts), as on the reactor.
        """
        crashes: list[Any] = []

        class Fatal:
            custom_timers: dict[str, float] = {}

            def run(self) -> None:
                raise KeyboardInterrupt()

        worker = PlayedThread()
        cannon = threaded_cannon(
            CannonSettings(
                index=0, turret_name="t", make_transaction=Fatal,
                clocks=self.clocks, report=self.results.append, started_at=0.0, on_crash=crashes.append,
            ),
            worker, self.mailbox,
        )
        cannon.start()
        worker.run()
        self.reactor.wake()
        self.assertEqual(len(crashes), 1)
        self.assertTrue(crashes[0].check(KeyboardInterrupt))
        self.assertFalse(cannon.running)


class ThreadedCannonFactoryTests(SynchronousTestCase):
    def test_misuse_logged_once_per_run(self) -> None:
        """
        ThreadedCannonFactory logs a misused step once per run (cannons of one run
        share its make_transaction), and again for the next run.
        """
        events: list[dict[str, Any]] = []
        steps = ThreadedCannonFactory(FakeReactor(), new_worker=PlayedThread)
        steps.log = Logger(observer=events.append)
        first_run: Callable[[], Any] = lambda: None  # noqa: E731
        second_run: Callable[[], Any] = lambda: None  # noqa: E731
        for run in (first_run, first_run, second_run, second_run):
            steps.misused("TypeError: run() returned a Deferred", run)
        self.assertEqual(len(events), 2)

    def test_no_thread_logged_once_per_run(self) -> None:
        """
        ThreadedCannonFactory logs a refused thread once per run, naming
        the limits to look at.
        """
        events: list[dict[str, Any]] = []
        steps = ThreadedCannonFactory(FakeReactor(), new_worker=PlayedThread)
        steps.log = Logger(observer=events.append)
        run: Callable[[], Any] = lambda: None  # noqa: E731
        for _ in range(3):
            steps.no_thread("can't start new thread", run)
        self.assertEqual(len(events), 1)
        self.assertIn("ulimit -u", events[0]["log_format"])


class DecisionTests(SynchronousTestCase):
    def classes(self) -> dict[str, type]:
        import sys

        from octtwisted._scripts.compat import install_oct_turrets_fallback

        install_oct_turrets_fallback()
        from oct_turrets.base import BaseTransaction

        class Classic(BaseTransaction):  # type: ignore[misc]
            def run(self) -> None:
                pass

        class Declared(Transaction):
            blocking = True

        class Plain:
            def run(self) -> None:
                pass

        class Async:
            async def run(self) -> None:
                pass

        class AsyncSetup:
            async def setup(self) -> None:
                pass

            def run(self) -> None:
                pass

        class Inline:
            @defer.inlineCallbacks
            def run(self) -> Any:
                yield None

        class DeclaredPlain:
            blocking = False

            def run(self) -> None:
                pass

        assert sys.modules[Plain.__module__]
        return {c.__name__: c for c in (Classic, Declared, Plain, Async, AsyncSetup, Inline, DeclaredPlain)}

    def test_rule(self) -> None:
        """
        The config key wins; then a blocking attribute of the script's own;
        an octtwisted.Transaction subclass, async def (any step) and
        inlineCallbacks run on the reactor; classes of a module that
        imports twisted too (this test module does); the reason says why.
        """
        c = self.classes()
        cases = {
            "Declared": (True, "Declared.blocking = True"),
            "DeclaredPlain": (False, "DeclaredPlain.blocking = False"),
            "Async": (False, "run is async def"),
            "AsyncSetup": (False, "setup is async def"),
            "Inline": (False, "run is an inlineCallbacks method"),
            "Plain": (False, "its module imports twisted"),
            "Classic": (False, "its module imports twisted"),
        }
        for name, (blocking, reason) in cases.items():
            self.assertEqual((decide(c[name], None).blocking, decide(c[name], None).reason), (blocking, reason), name)
        self.assertEqual(decide(Transaction, None).reason, "a subclass of octtwisted.Transaction")
        self.assertFalse(decide(Transaction, None).blocking)
        self.assertTrue(decide(c["Async"], True).blocking)
        self.assertEqual(decide(c["Async"], True).reason, 'the config says "blocking": true')
        self.assertFalse(decide(c["Classic"], False).blocking)

    def test_plain_modules_run_in_threads(self) -> None:
        """
        A classic script and a plain synchronous class, from modules that
        import no twisted, treq or octtwisted, run in threads.
        """
        from octtwisted._scripts.loading import load_transaction_class
        from tests.helpers import SCRIPTS

        for script in ("style_classic.py", "plain_sync.py", "classic_fails.py"):
            decision = decide(load_transaction_class(SCRIPTS / script), None)
            self.assertTrue(decision.blocking, script)
            self.assertIn("in threads, one per cannon", decision.describe())
        for script in ("plain_deferred.py", "hangs.py"):
            self.assertFalse(decide(load_transaction_class(SCRIPTS / script), None).blocking, script)


class WatchdogNamingTests(SynchronousTestCase):
    def test_step_in_names_the_script_frame(self) -> None:
        """
        step_in names the outermost frame outside the libraries (here this
        test method: trial, Twisted and the standard library are skipped).
        """
        import sys

        from octtwisted._firing.watchdog import step_in

        def inner() -> str:
            return step_in(sys._getframe())

        self.assertRegex(
            inner(),
            r"^WatchdogNamingTests\.test_step_in_names_the_script_frame \(test_threaded\.py line \d+\)$",
        )
        self.assertEqual(step_in(None), "")

    def test_warning_names_the_step_and_the_advice(self) -> None:
        """
        A late tick's warning names the step the sampler saw the reactor
        blocked in, and advises blocking = True.
        """
        from octtwisted._firing.watchdog import ReactorWatchdog

        class Seen:
            def start(self, ticked: Any) -> None:
                pass

            def stop(self) -> None:
                pass

            def take(self) -> str:
                return "Transaction.run (s.py line 3)"

        clock = Clock()
        now = [0.0]
        events: list[dict[str, Any]] = []
        dog = ReactorWatchdog(clock, lambda: now[0], sampler=Seen())
        dog.log = Logger(observer=events.append)
        dog.startService()
        now[0] += 1.1
        clock.advance(1.1)
        dog.stopService()
        self.assertEqual(len(events), 1)
        from twisted.logger import formatEvent

        text = formatEvent(events[0])
        self.assertIn("blocked for 1.10s in Transaction.run (s.py line 3)", text)
        self.assertIn("set blocking = True on its Transaction class", text)
