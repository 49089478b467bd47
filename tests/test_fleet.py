"""
The main process's side of ``--processes``, in memory: the
:class:`~octtwisted._edge.fleet.Fleet` of worker processes (with a fake
``spawnProcess`` and ``task.Clock``) and the
:class:`~octtwisted._firing.fleetrun.FleetRun` that merges their parts.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import orjson
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.clocks import Clocks
from octtwisted._core.config import parse_config
from octtwisted._core.share import LoadShare
from octtwisted._edge.channel import FROM_MAIN, TO_MAIN
from octtwisted._edge.fleet import DEATH_WINDOW, EXIT_GRACE, Fleet, Spawner, WorkerProcess
from octtwisted._firing.fleetrun import FleetRun, WorkersFailed
from octtwisted._stats.summary import RunStats
from tests.test_summary import result

STOP_BOUND = 15.0


class FakeProcess:
    """What ``spawnProcess`` returns, recording what the main process does."""

    def __init__(self, pid: int, argv: list[str]) -> None:
        self.pid = pid
        self.argv = argv
        self.written = bytearray()
        self.signals: list[str] = []

    def writeToChild(self, fd: int, data: bytes) -> None:
        assert fd == FROM_MAIN
        self.written += data

    def closeChildFD(self, fd: int) -> None:
        pass

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)

    def messages(self) -> list[dict[str, Any]]:
        """The messages the main process sent this worker."""
        found, data = [], bytes(self.written)
        while data:
            (length,) = struct.unpack("!I", data[:4])
            found.append(orjson.loads(data[4 : 4 + length]))
            data = data[4 + length :]
        return found

    def sent(self) -> list[str]:
        return [m["do"] for m in self.messages()]


def say(worker: WorkerProcess, message: dict[str, Any]) -> None:
    """The worker sends the main process a message."""
    data = orjson.dumps(message)
    worker.childDataReceived(TO_MAIN, struct.pack("!I", len(data)) + data)


def config(cannons: int = 4, **keys: Any) -> Any:
    here = Path(__file__).absolute()
    raw = {"name": "t", "cannons": cannons, "rampup": 0, "script": here.name, **keys}
    return parse_config(raw, here, standalone=True)


class FleetTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.spawned: list[FakeProcess] = []
        self.exits: list[int] = []
        self.crashes: list[Failure] = []
        self.config = config()
        self.fleet = Fleet(
            shares=LoadShare.split(4, 2),
            start=Spawner(lambda share, generation: ["worker", f"{share.index}/{share.count}", str(generation)],
                          self.spawn, {}),
            clock=self.clock,
            exit=self.exits.append,
            stop_bound=STOP_BOUND,
        )
        self.fleet.startService()

    def spawn(self, protocol: WorkerProcess, executable: str, argv: list[str], **kw: Any) -> FakeProcess:
        process = FakeProcess(1000 + len(self.spawned), argv)
        self.spawned.append(process)
        protocol.makeConnection(process)  # type: ignore[arg-type]
        return process

    def ready(self) -> None:
        for worker in self.fleet.workers:
            say(worker, {"is": "ready", "pid": worker.pid, "cannons": worker.share.cannons})

    def start_run(self) -> FleetRun:
        run = FleetRun(config=self.config, workers=self.fleet, context={"k": 1},
                       clocks=Clocks.fake(self.clock), on_crash=self.crashes.append)
        run.start()
        return run

    def part(self, worker: WorkerProcess, stats: RunStats, *, active: int = 2, started: int = 2,
             kind: str = "part", dropped: int = 0, in_flight: int = 0) -> None:
        message: dict[str, Any] = {"is": kind, "part": stats.take_part().to_wire(), "started": started}
        if kind == "part":
            message["active"] = active
            message["in_flight"] = in_flight
        else:
            message["dropped"] = dropped
        say(worker, message)

    def die(self, worker: WorkerProcess, signal: int | None = 9, code: int | None = None) -> None:
        reason = ProcessDone(0) if signal is None and code == 0 else ProcessTerminated(code, signal)
        worker.processEnded(Failure(reason))


class FleetRunTests(FleetTestCase):
    def test_spawns_one_worker_per_share(self) -> None:
        """Each share gets a process of its own, generation 0."""
        self.assertEqual([p.argv for p in self.spawned],
                         [["worker", "0/2", "0"], ["worker", "1/2", "0"]])

    def test_start_waits_for_every_worker(self) -> None:
        """
        ``start`` reaches the workers (with the context) only once every
        one of them is ready, and the run's clock starts then.
        """
        run = self.start_run()
        self.assertEqual([p.sent() for p in self.spawned], [[], []])
        self.clock.advance(2)
        self.ready()
        self.assertEqual([p.messages() for p in self.spawned],
                         [[{"do": "start", "context": {"k": 1}}]] * 2)
        self.clock.advance(3)
        say(self.fleet.workers[0], {"is": "stopped", "part": None, "started": 0, "dropped": 0})
        say(self.fleet.workers[1], {"is": "stopped", "part": None, "started": 0, "dropped": 0})
        run.stop()
        self.assertEqual(run.close().duration, 3.0)

    def test_parts_merge(self) -> None:
        """
        The workers' parts add up in the run's stats, their active and
        started cannons too; the summary counts both workers' last parts,
        their dropped results, and says 2 processes.
        """
        run = self.start_run()
        self.ready()
        one, two = RunStats(), RunStats()
        for _ in range(3):
            one.record(result(0.01))
        two.record(result(0.02, error="boom"))
        self.part(self.fleet.workers[0], one, active=2, started=2)
        self.part(self.fleet.workers[1], two, active=1, started=2)
        self.assertEqual((run.stats.transactions, run.stats.errors), (4, 1))
        self.assertEqual((run.active_cannons(), run.cannons_started), (3, 4))
        stopped = run.stop()
        self.assertEqual([p.sent()[-1] for p in self.spawned], ["stop", "stop"])
        one.record(result(0.03))
        self.part(self.fleet.workers[0], one, kind="stopped", started=2, dropped=1)
        self.assertNoResult(stopped)
        self.part(self.fleet.workers[1], two, kind="stopped", started=2, dropped=2)
        self.successResultOf(stopped)
        summary = run.close()
        self.assertEqual((summary.transactions, summary.errors, summary.dropped), (5, 1, 3))
        self.assertEqual((summary.processes, summary.processes_replaced, summary.cannons_reached),
                         (2, 0, 4))
        assert summary.scriptrun_time is not None
        self.assertEqual(summary.scriptrun_time.max, 0.03)

    def test_firing_and_waiting_apart(self) -> None:
        """
        The main process's summary splits the firing time (until it told
        the workers to stop) from the stop's wait, with the transactions in
        flight the workers' last parts counted; the rate is per firing
        second.
        """
        run = self.start_run()
        self.ready()
        one = RunStats()
        for _ in range(6):
            one.record(result(0.01))
        self.clock.advance(3)
        self.part(self.fleet.workers[0], one, active=2, started=2, in_flight=2)
        self.part(self.fleet.workers[1], RunStats(), active=2, started=2, in_flight=1)
        self.assertEqual(run.in_flight(), 3)
        stopped = run.stop()
        self.clock.advance(2)
        self.part(self.fleet.workers[0], one, kind="stopped", started=2)
        self.part(self.fleet.workers[1], RunStats(), kind="stopped", started=2)
        self.successResultOf(stopped)
        summary = run.close()
        self.assertEqual((summary.firing_time, summary.stop_wait, summary.duration), (3.0, 2.0, 5.0))
        self.assertEqual(summary.in_flight_at_stop, 3)
        self.assertEqual(summary.transactions_per_second, 2.0)

    def test_worker_that_does_not_stop_is_killed(self) -> None:
        """
        A worker that does not answer ``stop`` within the bound is killed
        (SIGKILL), and the stop ends.
        """
        run = self.start_run()
        self.ready()
        stopped = run.stop()
        say(self.fleet.workers[0], {"is": "stopped", "part": None, "started": 2, "dropped": 0})
        self.clock.advance(STOP_BOUND - 0.1)
        self.assertNoResult(stopped)
        self.clock.advance(0.1)
        self.assertEqual(self.spawned[1].signals, ["KILL"])
        self.successResultOf(stopped)


class DeathTests(FleetTestCase):
    def test_dead_worker_is_replaced_and_fires(self) -> None:
        """
        A worker that dies during a run is replaced by a fresh process of
        the same share (next generation), which is told to start with the
        run's context; the summary says one process was replaced, and the
        dead worker's figures stay counted.
        """
        run = self.start_run()
        self.ready()
        stats = RunStats()
        stats.record(result(0.01))
        self.part(self.fleet.workers[1], stats, started=2)
        self.die(self.fleet.workers[1])
        self.assertEqual(len(self.spawned), 3)
        fresh = self.spawned[2]
        self.assertEqual(fresh.argv, ["worker", "1/2", "1"])
        self.assertEqual(fresh.messages(), [{"do": "start", "context": {"k": 1}}])
        self.assertEqual(self.fleet.replaced, 1)
        stopped = run.stop()
        for worker in self.fleet.workers:
            say(worker, {"is": "stopped", "part": None, "started": 2, "dropped": 0})
        self.successResultOf(stopped)
        summary = run.close()
        self.assertEqual(summary.transactions, 1)
        self.assertEqual(summary.processes_replaced, 1)
        self.assertEqual(summary.cannons_reached, 6)  # 2 + 2 of the dead one + 2 of the fresh one

    def test_death_while_stopping_ends_that_workers_stop(self) -> None:
        """A worker that dies while the run stops counts as stopped."""
        run = self.start_run()
        self.ready()
        stopped = run.stop()
        say(self.fleet.workers[0], {"is": "stopped", "part": None, "started": 2, "dropped": 0})
        self.die(self.fleet.workers[1], signal=None, code=3)
        self.successResultOf(stopped)
        self.assertEqual(self.spawned[2].sent(), [])  # the fresh one is not told to start

    def test_four_deaths_within_the_window_fail_the_run(self) -> None:
        """
        The fourth death within 60 s stops the run: the run's on_crash is
        given a WorkersFailed saying so, and no fresh process is spawned.
        """
        self.start_run()
        self.ready()
        for n in range(4):
            self.clock.advance(5)
            self.die(self.fleet.workers[n % 2], signal=None, code=3)
        self.assertEqual(len(self.crashes), 1)
        self.crashes[0].trap(WorkersFailed)
        self.assertIn("4 worker processes died within 60s", str(self.crashes[0].value))
        self.assertEqual(len(self.spawned), 2 + 3)

    def test_deaths_spread_out_never_fail(self) -> None:
        """Deaths more than 60 s apart are replaced, however many there are."""
        self.start_run()
        self.ready()
        for n in range(8):
            self.clock.advance(DEATH_WINDOW / 3 + 1)
            self.die(self.fleet.workers[0])
        self.assertEqual(self.crashes, [])
        self.assertEqual(self.fleet.replaced, 8)

    def test_deaths_outside_a_run_exit(self) -> None:
        """Workers that keep dying while no run is under way end the turret (70)."""
        for _ in range(4):
            self.die(self.fleet.workers[0], code=1, signal=None)
        self.assertEqual(self.exits, [70])


class ExitTests(FleetTestCase):
    def test_stop_tells_every_worker_to_exit(self) -> None:
        """
        Stopping the fleet sends ``exit`` to every worker and waits for
        them to end; one still there after the grace is killed.
        """
        stopped = self.fleet.stopService()
        self.assertEqual([p.sent() for p in self.spawned], [["exit"], ["exit"]])
        self.die(self.fleet.workers[0], signal=None, code=0)
        self.clock.advance(STOP_BOUND + EXIT_GRACE)
        self.assertEqual(self.spawned[1].signals, ["KILL"])
        self.assertNoResult(stopped)
        self.die(self.fleet.workers[1])
        self.successResultOf(stopped)
        self.assertEqual(len(self.spawned), 2)  # nothing replaced while leaving
