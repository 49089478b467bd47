"""
``--processes``: one turret firing from several processes, end to end
through ``twistd oct-turret`` with a FakeHQ over real ZeroMQ sockets, and
standalone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import LoopingCall, deferLater

from octtwisted._core.processes import cpus_available
from tests.helpers import TurretProcess, TurretTestCase
from tests.test_report import report_data

#: Seconds a test waits for processes to be gone.
GONE_TIMEOUT = 10.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has not been reaped by its parent yet: it no longer runs.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def gone(pids: set[int], timeout: float = GONE_TIMEOUT) -> float:
    """
    Waits until none of ``pids`` runs; returns how long that took.
    Fails the test if one still runs after ``timeout`` seconds.
    """
    waited = 0.0
    while any(alive(pid) for pid in pids):
        if waited >= timeout:
            raise AssertionError(f"still running after {timeout}s: {sorted(p for p in pids if alive(p))}")
        await deferLater(reactor, 0.05, lambda: None)
        waited += 0.05
    return waited


def pids_of(results: list[dict[str, Any]]) -> set[int]:
    return {int(r["custom_timers"]["pid"]) for r in results}


def zygote_of(turret: TurretProcess) -> int:
    """The pid of the turret's zygote, as its log says it."""
    found = re.search(r"workers are forked from a zygote \(pid (\d+)\)", turret.output)
    assert found is not None, turret.output
    return int(found.group(1))


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def command_line(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def uss_kib(pid: int) -> int:
    """What the process alone holds: Private_Clean + Private_Dirty (KiB)."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            fields[name] = rest.split()[0] if rest.split() else "0"
    return int(fields["Private_Clean"]) + int(fields["Private_Dirty"])


def foreign_epoll_targets(pid: int) -> list[str]:
    """
    The registrations in the process's epoll instances that are not files
    it has open itself (as the kernel lists them in fdinfo: the target's
    descriptor number and inode): what a process sharing its epoll would
    have registered there.
    """
    foreign = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = f.read()
        except OSError:
            continue
        for target, inode in re.findall(r"tfd:\s*(\d+).*?ino:([0-9a-f]+)", info):
            try:
                own = os.stat(f"/proc/{pid}/fd/{target}").st_ino == int(inode, 16)
            except OSError:
                own = False
            if not own:
                foreign.append(f"epoll {fd}: fd {target} (inode {inode})")
    return foreign


def epolls(pid: int) -> int:
    """How many epoll instances the process has open."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[eventpoll]"
        except OSError:
            pass
    return count


def worker_pids(turret: TurretProcess) -> list[int]:
    """The workers' pids, from the line that says the turret fires from them."""
    return [int(pid) for pid in re.findall(r"worker \d+ \(pid (\d+),", turret.output)]


class HQTests(TurretTestCase):
    """
    With an HQ, a turret firing from two processes is one turret: one
    uuid, one status stream with the config's cannons, every order obeyed
    by every process, results from each.
    """

    turret_script = "pid_timer.py"

    def setUp(self) -> None:
        self.hq = self.start_hq()

    async def start(self, turret: TurretProcess) -> None:
        """
        Start the turret. Its first status can come before its SUB socket
        has joined (ZeroMQ's slow joiner), and a ``start`` published then
        is lost, as it would be for the real HQ: so ``start`` is published
        every half second until the turret says Running (a turret that
        runs ignores another ``start``).
        """
        hq = self.hq
        assert hq is not None
        await turret.wait_output("firing from 2 processes")
        await hq.handshake(turret.uuid)
        starting = LoopingCall(hq.publish, "start")
        starting.start(0.5)
        try:
            await hq.wait_for_status("Running", turret.uuid, timeout=30)
        finally:
            starting.stop()

    async def firing(self) -> TurretProcess:
        """A turret of 4 cannons in 2 processes, started, both firing."""
        hq = self.hq
        assert hq is not None
        turret = self.launch(cannons=4, args=["--processes", "2"])
        await self.start(turret)
        await hq.wait_until(lambda: True if len(pids_of(hq.results)) >= 2 else None, 20,
                            "results from both workers")
        return turret

    async def test_one_turret_to_the_hq(self) -> None:
        """
        The HQ sees one uuid, whose status says the config's 4 cannons;
        results come from both worker processes (not the main one); after
        ``stop`` the turret answers ready once both have stopped, and no
        result arrives after that.
        """
        hq = self.hq
        assert hq is not None
        turret = await self.firing()
        self.assertEqual({s["uuid"] for s in hq.statuses}, {turret.uuid})
        self.assertEqual({s["cannons"] for s in hq.statuses}, {4})
        workers = pids_of(hq.results)
        self.assertEqual(len(workers), 2)
        self.assertNotIn(turret.transport.pid, workers)
        hq.publish("stop")
        seen = len(hq.statuses)
        await hq.wait_for_status("ready", turret.uuid, after=seen, timeout=20)
        after_ready = len(hq.results)
        await deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(len(hq.results), after_ready, "results arrived after ready")
        self.assertIn("run summary:", turret.output)

    async def test_kill_ends_every_process(self) -> None:
        """
        ``kill`` ends the main process (exit 0) and every worker.
        """
        hq = self.hq
        assert hq is not None
        turret = await self.firing()
        workers = pids_of(hq.results)
        hq.publish("kill")
        self.assertEqual(await turret.wait_exit(20), 0)
        await gone(workers)

    async def test_dead_worker_is_replaced(self) -> None:
        """
        A worker killed with SIGKILL during a run is noticed, logged with
        its signal, and replaced by a fresh process that fires its cannons:
        results come from a new pid, and the run goes on.
        """
        hq = self.hq
        assert hq is not None
        turret = await self.firing()
        first = pids_of(hq.results)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        await turret.wait_output("killed by signal 9 (SIGKILL)")
        await turret.wait_output("replaced by a fresh process")
        await hq.wait_until(lambda: True if pids_of(hq.results) - first else None, 20,
                            "results from the fresh worker")
        (fresh,) = pids_of(hq.results) - first
        self.assertEqual(parent_of(fresh), zygote_of(turret), "the fresh worker is forked too")
        hq.publish("stop")
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=20)

    async def test_workers_are_forked_from_the_zygote(self) -> None:
        """
        The workers are children of the zygote, itself a child of the main
        process; they were forked, not spawned: their command line is the
        main process's, without ``--worker``.
        """
        hq = self.hq
        assert hq is not None
        turret = await self.firing()
        zygote = zygote_of(turret)
        self.assertEqual(parent_of(zygote), turret.transport.pid)
        main_line = command_line(turret.transport.pid)
        for worker in pids_of(hq.results):
            self.assertEqual(parent_of(worker), zygote)
            self.assertEqual(command_line(worker), main_line)
            self.assertNotIn(b"--worker", command_line(worker))

    async def test_forked_workers_have_a_reactor_of_their_own(self) -> None:
        """
        The reactor the main process had installed before the fork is not
        shared: the zygote holds no epoll instance, and every registration
        in an epoll instance of the main process or of a worker is a file
        that process has open itself (a worker registering into the
        inherited instance would show in the main process's). The run
        goes on: ``stop`` is answered.
        """
        hq = self.hq
        assert hq is not None
        turret = await self.firing()
        self.assertEqual(epolls(zygote_of(turret)), 0)
        for pid in (turret.transport.pid, *pids_of(hq.results)):
            for attempt in range(5):  # a descriptor may close between two reads
                foreign = foreign_epoll_targets(pid)
                if not foreign:
                    break
                await deferLater(reactor, 0.2, lambda: None)
            self.assertEqual(foreign, [], f"pid {pid}")
        hq.publish("stop")
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=20)

    async def test_zygote_gone_falls_back_to_spawning(self) -> None:
        """
        SIGKILL of the zygote: the turret says so once and goes on; a
        worker that dies after that (its end noticed without the zygote)
        is replaced by a spawned process (``--worker`` on its command
        line), whose results arrive.
        """
        hq = self.hq
        assert hq is not None
        turret = await self.firing()
        first = pids_of(hq.results)
        os.kill(zygote_of(turret), signal.SIGKILL)
        await turret.wait_output("has gone")
        os.kill(min(first), signal.SIGKILL)
        await turret.wait_output("replaced by a fresh process")
        await hq.wait_until(lambda: True if pids_of(hq.results) - first else None, 30,
                            "results from the spawned worker")
        (fresh,) = pids_of(hq.results) - first
        self.assertIn(b"--worker", command_line(fresh))
        self.assertEqual(turret.output.count("has gone"), 1, turret.output)
        hq.publish("stop")
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=20)

    async def test_sigkill_of_the_turret_leaves_no_process(self) -> None:
        """
        SIGKILL of the main process: every worker notices (its pipe from
        the main process closes) and exits within 2 seconds, and so does
        the zygote.
        """
        hq = self.hq
        assert hq is not None
        turret = await self.firing()
        workers = pids_of(hq.results) | {zygote_of(turret)}
        turret.signal(signal.SIGKILL)
        await turret.wait_exit(10)
        took = await gone(workers)
        self.assertLess(took, 2.0)


    async def test_start_while_stopping(self) -> None:
        """
        ``start`` right after ``stop`` (a new HQ): the turret answers
        Running again once both workers have stopped, and both fire the
        new run.
        """
        hq = self.hq
        assert hq is not None
        turret = self.launch(cannons=4, args=["--processes", "2"])
        await self.start(turret)
        await hq.wait_for_results(10, 20)
        seen = len(hq.statuses)
        hq.publish("stop")
        hq.publish("start")
        await hq.wait_for_status("Running", turret.uuid, after=seen, timeout=20)
        await turret.wait_output("start received while stopping")
        before = len(hq.results)
        await hq.wait_until(lambda: True if len(pids_of(hq.results[before:])) == 2 else None, 20,
                            "results of the new run from both workers")
        hq.publish("stop")
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=20)


    async def test_one_metrics_endpoint(self) -> None:
        """
        ``--metrics`` with 2 processes: the main process serves one
        endpoint for the whole turret. After a run, its transactions
        counter is every result the HQ received from both workers, and
        its state is ready.
        """
        import treq
        from prometheus_client.parser import text_string_to_metric_families
        from twisted.web.client import HTTPConnectionPool

        hq = self.hq
        assert hq is not None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        turret = self.launch(cannons=4, args=["--processes", "2", "--metrics", str(port)])
        await self.start(turret)
        await hq.wait_until(lambda: True if len(pids_of(hq.results)) >= 2 else None, 20,
                            "results from both workers")
        hq.publish("stop")
        await hq.wait_for_status("ready", turret.uuid, after=len(hq.statuses), timeout=20)
        await deferLater(reactor, 0.5, lambda: None)
        pool = HTTPConnectionPool(reactor, persistent=False)
        response = await treq.get(f"http://127.0.0.1:{port}/metrics", pool=pool)
        text = (await response.content()).decode()
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        labels = (("turret", "test-turret"), ("uuid", turret.uuid))
        ok = samples[("oct_transactions_total", (("outcome", "ok"), *labels))]
        self.assertEqual(ok, len(hq.results))
        self.assertEqual(samples[("oct_turret_state", (("state", "ready"), *labels))], 1.0)


class StandaloneTests(TurretTestCase):
    """
    Standalone, the processes make one run: one summary merged exactly,
    one results file with every row, thresholds judged once.
    """

    turret_script = "deferred_sleep.py"

    async def test_summary_matches_results_file(self) -> None:
        """
        ``--processes 2 --results r.jsonl --summary-json s.json``: the
        summary counts exactly the rows of the one results file, its
        ``wait`` timer saw every transaction, and it says 2 processes; the
        report's transactions/s points add up to the summary's
        transactions (the whole turret's, not one worker's half).
        """
        turret = self.launch(standalone=True, cannons=6, args=[
            "--processes", "2", "--duration", "3", "--results", "r.jsonl", "--summary-json", "s.json",
            "--report", "r.html",
        ])
        self.assertEqual(await turret.wait_exit(40), 0, turret.output)
        summary = json.loads((turret.folder / "s.json").read_text())
        rows = (turret.folder / "r.jsonl").read_text().splitlines()
        self.assertGreater(summary["transactions"], 100)
        self.assertEqual(summary["transactions"], len(rows))
        self.assertEqual(summary["custom_timers"]["wait"]["count"], len(rows))
        self.assertEqual(summary["processes"], 2)
        self.assertEqual(summary["cannons_reached"], 6)
        self.assertEqual(list(turret.folder.glob(".r.part*")), [])
        self.assertEqual(turret.output.count("Run summary"), 1)
        data = report_data((turret.folder / "r.html").read_text())
        ends = data["x"]
        spans = [end - start for start, end in zip([0.0, *ends], ends)]
        charted = sum(tps * span for tps, span in zip(data["tps"], spans))
        # The report rounds each end to the millisecond and each rate to
        # 0.01/s: the sum can be off by that much, no more.
        rounding = sum(data["tps"]) * 0.001 + 0.01 * len(spans) + 1
        self.assertLess(abs(charted - summary["transactions"]), rounding, (data, summary["transactions"]))

    async def test_csv_results_joined(self) -> None:
        """
        A CSV results file from two processes has one header and one row
        per transaction of the summary.
        """
        turret = self.launch(standalone=True, cannons=4, args=[
            "--processes", "2", "--duration", "2", "--results", "r.csv", "--summary-json", "s.json",
        ])
        self.assertEqual(await turret.wait_exit(40), 0, turret.output)
        summary = json.loads((turret.folder / "s.json").read_text())
        lines = (turret.folder / "r.csv").read_text().splitlines()
        self.assertTrue(lines[0].startswith("epoch,"))
        self.assertEqual(sum(1 for line in lines if line.startswith("epoch,")), 1)
        self.assertEqual(len(lines) - 1, summary["transactions"])

    async def test_thresholds_exit_99_once(self) -> None:
        """
        A threshold that fails on the merged figures exits 99, said once.
        """
        turret = self.launch(standalone=True, cannons=4, thresholds={"wait": ["p95 < 1ms"]},
                             args=["--processes", "2", "--duration", "2"])
        self.assertEqual(await turret.wait_exit(40), 99, turret.output)
        self.assertEqual(turret.output.count("thresholds failed"), 1, turret.output)

    async def test_workers_that_keep_dying_stop_the_run(self) -> None:
        """
        A script that ends its process at every transaction: each death
        is logged and replaced, and the fourth within 60 s stops the run
        with an error that says so; the exit status is not 0.
        """
        turret = self.launch("exits_process.py", standalone=True, cannons=2,
                             args=["--processes", "2", "--duration", "30"])
        code = await turret.wait_exit(60)
        self.assertNotEqual(code, 0)
        self.assertIn("worker processes died within 60s", turret.output)
        self.assertIn("exit status 3", turret.output)

    async def test_sigterm_writes_the_summary(self) -> None:
        """
        SIGTERM to a standalone turret with 2 processes, once both fire,
        stops both (the transactions under way end and are written),
        prints the one merged summary and leaves no worker behind.
        """
        turret = self.launch("pid_timer.py", standalone=True, cannons=4,
                             args=["--processes", "2", "--results", "r.jsonl"])
        await turret.wait_output("worker 0: [octtwisted.turret.TurretService#info] all 2 cannons firing")
        await turret.wait_output("worker 1: [octtwisted.turret.TurretService#info] all 2 cannons firing")
        turret.signal(signal.SIGTERM)
        await turret.wait_exit(30)
        self.assertIn("Run summary", turret.output)
        rows = [json.loads(line) for line in (turret.folder / "r.jsonl").read_text().splitlines()]
        workers = {int(r["custom_timers"]["pid"]) for r in rows}
        self.assertEqual(len(workers), 2)
        await gone(workers)


    async def test_forked_worker_holds_less_memory(self) -> None:
        """
        A forked worker's own memory (USS: what its end would free) is well
        below a spawned worker's, both firing the same share, measured side
        by side in this test: under three quarters of it (it measures about
        half: a forked worker still writes the reference counts of the
        objects it uses, which unshares their pages).
        """
        forked = self.launch(standalone=True, cannons=4, args=["--processes", "2"])
        spawned = self.launch(standalone=True, cannons=4, args=["--processes", "2"],
                              env={**os.environ, "OCT_TURRET_WORKERS": "spawn"})
        for turret in (forked, spawned):
            await turret.wait_output("worker 0: [octtwisted.turret.TurretService#info] all 2 cannons firing")
            await turret.wait_output("worker 1: [octtwisted.turret.TurretService#info] all 2 cannons firing")
        self.assertIn("workers are forked from a zygote", forked.output)
        self.assertNotIn("zygote", spawned.output)
        await deferLater(reactor, 1.0, lambda: None)
        forked_uss = [uss_kib(pid) for pid in worker_pids(forked)]
        spawned_uss = [uss_kib(pid) for pid in worker_pids(spawned)]
        self.assertEqual((len(forked_uss), len(spawned_uss)), (2, 2))
        self.assertLess(max(forked_uss), 0.75 * min(spawned_uss), (forked_uss, spawned_uss))
        for turret in (forked, spawned):
            turret.signal(signal.SIGTERM)
            await turret.wait_exit(30)

    async def test_auto_with_fewer_cannons(self) -> None:
        """
        ``--processes auto`` with one cannon fires from one process, and
        says so in one line.
        """
        turret = self.launch(standalone=True, cannons=1, args=["--processes", "auto", "--duration", "1"])
        self.assertEqual(await turret.wait_exit(30), 0, turret.output)
        if cpus_available() > 1:
            self.assertIn("but the config has 1 cannon: firing from 1 process", turret.output)


class BadProcessesTests(TurretTestCase):
    """
    A bad number of processes stops the turret at start: one line, exit 2,
    nothing started.
    """

    turret_script = "plain.py"

    async def check_refused(self, turret: TurretProcess, words: str) -> None:
        self.assertEqual(await turret.wait_exit(20), 2, turret.output)
        self.assertIn(words, turret.output)
        self.assertNotIn("Traceback", turret.output)
        self.assertNotIn("firing from", turret.output)

    async def test_bad_config_values(self) -> None:
        """``processes``: 0, -3, "many", 1025 and true are refused."""
        for value in (0, -3, "many", 1025, True):
            turret = self.launch(standalone=True, processes=value)
            await self.check_refused(turret, "key 'processes' must be a whole number")

    async def test_bad_command_line(self) -> None:
        """``--processes many`` and ``--processes 0`` are refused."""
        for value in ("many", "0"):
            turret = self.launch(standalone=True, args=["--processes", value])
            await self.check_refused(turret, "--processes must be a whole number")
