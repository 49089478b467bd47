"""
The real OCT HQ (``oct`` 0.4.12, from the ``hq`` extra) through ``oct-hq``:
each bridge, checked on the very oct code that needs it; the command's
answers to bad input; and the whole system end to end, the real HQ with
two of our turrets. Nothing of the HQ is stubbed: these tests need the
extra (``pip install -e '.[hq]'``, which ``make test`` installs) and fail
without it rather than skip.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import os
import shutil
import signal
import socket
import sqlite3
import sys
import warnings
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core.deferreds import cancel_call, on_fired
from octtwisted._hqbridge.bridges import BRIDGES, install_all
from tests.helpers import SCRIPTS, TurretProcess

ROOT = Path(__file__).resolve().parent.parent
OCT_HQ = str(Path(sys.executable).parent / "oct-hq")

MISSING = (
    "the real HQ is not installed in this environment: pip install -e '.[hq]' "
    "(make test installs it)"
)


def require_hq(case: SynchronousTestCase) -> None:
    if importlib.util.find_spec("oct") is None or not Path(OCT_HQ).exists():
        case.fail(MISSING)


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


async def oct_hq(args: list[str], cwd: Path) -> tuple[str, str, int]:
    """Run ``oct-hq ARGS`` to its end: (stdout, stderr, exit status)."""
    out, err, code = await getProcessOutputAndValue(OCT_HQ, args, env=dict(os.environ), path=str(cwd))
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code


def new_project(folder: Path, **keys: Any) -> Deferred[Path]:
    """``oct-hq new-project P`` in ``folder``, then ``keys`` set in its config."""

    async def make() -> Path:
        out, err, code = await oct_hq(["new-project", "P"], folder)
        assert code == 0, out + err
        project = folder / "P"
        config = json.loads((project / "config.json").read_text())
        config.update(keys)
        (project / "config.json").write_text(json.dumps(config, indent=2))
        return project

    return defer.ensureDeferred(make())


class _HQRun(protocol.ProcessProtocol):
    """``oct-hq ARGS`` as a child of the reactor, its output collected."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.output = bytearray()
        self.ended: Deferred[int | None] = Deferred()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.transport = reactor.spawnProcess(self, OCT_HQ, [OCT_HQ, *args], env=env, path=str(cwd))

    def outReceived(self, data: bytes) -> None:
        self.output.extend(data)

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(reason.value.exitCode)

    @property
    def text(self) -> str:
        # oct rewrites its progress line with "\r" after every message.
        lines = self.output.decode("utf-8", "replace").replace("\r", "\n").splitlines()
        return "\n".join(line for line in lines if not line.startswith("turrets: "))

    def wait_exit(self, timeout: float) -> Deferred[int | None]:
        d: Deferred[int | None] = Deferred()
        self.ended.addCallback(lambda code: d.called or d.callback(code))

        def too_slow() -> None:
            if not d.called:
                self.cleanup()
                d.errback(AssertionError(f"oct-hq did not end in {timeout}s:\n{self.text[-3000:]}"))

        call = reactor.callLater(timeout, too_slow)
        return on_fired(d, lambda: cancel_call(call))

    def cleanup(self) -> Deferred[Any]:
        if self.ended.called:
            return defer.succeed(None)
        self.transport.signalProcess(signal.SIGKILL)
        return self.ended


def _stats_db(case: SynchronousTestCase, config: dict[str, Any] | None = None) -> Path:
    """oct's ``init_stats`` on a new results folder: the database its HQ writes."""
    from oct.results.models import db
    from oct.results.stats_handler import init_stats

    out = Path(case.mktemp()).absolute() / "results"
    init_stats(str(out), config or {})
    case.addCleanup(lambda: db.obj.is_closed() or db.obj.close())
    return out / "results.sqlite"


def _result(epoch: float, timers: dict[str, float] | None = None, error: str = "") -> dict[str, Any]:
    return {"turret_name": "t", "elapsed": 1.5, "epoch": epoch, "scriptrun_time": 0.25,
            "error": error, "custom_timers": timers or {}}


def _count(path: Path, table: str) -> int:
    """Rows of ``table``, read through a connection of our own (committed rows only)."""
    with sqlite3.connect(path) as reader:
        (count,) = reader.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


#: The columns of oct's result table, as the test reads them.
COLUMNS = ("turret_name", "epoch", "elapsed", "scriptrun_time", "error", "custom_timers")


def _key(result: dict[str, Any]) -> tuple[Any, ...]:
    """A result, sent (JSON) or stored (a row), as one comparable value."""
    timers = result["custom_timers"]
    if isinstance(timers, str):
        timers = json.loads(timers)
    return (*(result[c] for c in COLUMNS[:5]), tuple(sorted(timers.items())))


class BridgeTests(SynchronousTestCase):
    """Each bridge, on the oct lines that need it (``docs/hq.rst`` lists them)."""

    def setUp(self) -> None:
        require_hq(self)
        install_all()

    def test_each_bridge_is_needed_and_installs_once(self) -> None:
        """
        In a fresh process, today's peewee and pandas lack every name a
        bridge gives back (no bridge is there for nothing); installing adds
        them all, and installing again adds none.
        """
        code = (
            "from octtwisted._hqbridge.bridges import BRIDGES, install_all\n"
            "print([b.missing() for b in BRIDGES], len(install_all()),"
            " [b.missing() for b in BRIDGES], len(install_all()))\n"
        )
        out, err, status = self._python(code)
        n = len(BRIDGES)
        self.assertEqual((status, out.strip()), (0, f"{[True] * n} {n} {[False] * n} 0"), err)

    def test_threadlocals(self) -> None:
        """
        ``set_database`` (oct/results/models.py) opens a results file with
        ``threadlocals=True``, which peewee 3 hands to ``sqlite3.connect``
        (a TypeError): with the bridge it is peewee 3's ``thread_safe``, and
        the database opens and answers.
        """
        from oct.results.models import set_database
        from peewee import Proxy

        path = Path(self.mktemp()).absolute()
        path.mkdir()
        proxy = Proxy()
        set_database(str(path / "results.sqlite"), proxy, {})
        self.addCleanup(proxy.obj.close)
        self.assertTrue(proxy.obj.thread_safe)
        self.assertEqual(proxy.obj.connect_params, {"check_same_thread": False})
        self.assertEqual(proxy.obj.execute_sql("SELECT 41 + 1").fetchone(), (42,))

    def test_get_conn(self) -> None:
        """
        ``init_stats`` (oct/results/stats_handler.py) calls
        ``db.get_conn()``: it creates the result and turret tables, and
        ``get_conn()`` is this thread's open connection, as
        ``connection()`` is in peewee 3 (report.py hands it to pandas).
        """
        from oct.results.models import db

        path = _stats_db(self)
        self.assertEqual((_count(path, "result"), _count(path, "turret")), (0, 0))
        self.assertIs(db.get_conn(), db.connection())

    def test_execution_context_stores_results(self) -> None:
        """
        oct's ``StatsHandler`` writes every 150 results, and the rest at the
        end, each ``with db.execution_context()``: the rows are committed
        (another connection reads them) as soon as each write ends.
        """
        from oct.results.stats_handler import StatsHandler

        path = _stats_db(self)
        handler = StatsHandler()
        for i in range(151):
            handler.write_result(_result(1000.0 + i, {"nap": 0.1}))
        self.assertEqual(_count(path, "result"), 150)
        handler.write_remaining()
        self.assertEqual(_count(path, "result"), 151)

    def test_execution_context_semantics(self) -> None:
        """
        Like peewee 2's: the block runs in a transaction, rolled back when
        it raises; a connection it opened is closed after it, one already
        open stays open.
        """
        from peewee import SqliteDatabase

        path = Path(self.mktemp()).absolute()
        path.mkdir()
        database = SqliteDatabase(str(path / "t.sqlite"))
        with database.execution_context():
            database.execute_sql("CREATE TABLE t (x INTEGER)")
        self.assertTrue(database.is_closed())
        with self.assertRaises(ZeroDivisionError):
            with database.execution_context():
                database.execute_sql("INSERT INTO t VALUES (1)")
                1 / 0
        database.connect()
        self.addCleanup(database.close)
        with database.execution_context():
            database.execute_sql("INSERT INTO t VALUES (2)")
        self.assertFalse(database.is_closed())
        self.assertEqual(_count(path / "t.sqlite", "t"), 1)

    def test_execution_context_turrets(self) -> None:
        """
        ``TurretsManager`` (oct/core/turrets_manager.py) saves a turret's
        status ``with db.execution_context()``: a new turret is a row, its
        next status updates that row.
        """
        from oct.core.turrets_manager import TurretsManager

        path = _stats_db(self)
        manager = TurretsManager(free_ports(1)[0])
        self.addCleanup(manager.publisher.context.term)
        self.addCleanup(manager.clean)
        status = {"turret": "t", "status": "ready", "uuid": "u-1", "rampup": 0, "script": "s.py", "cannons": 2}
        self.assertTrue(manager.process_message(dict(status)))
        self.assertTrue(manager.process_message(dict(status, status="Running")))
        with sqlite3.connect(path) as reader:
            rows = reader.execute("SELECT name, uuid, status, cannons FROM turret").fetchall()
        self.assertEqual(rows, [("t", "u-1", "ready", 2)])

    def test_iteritems(self) -> None:
        """
        The report's ``_get_all_timers`` (oct/results/report.py) walks the
        custom timers with ``Series.iteritems()`` (gone in pandas 2): it
        collects each timer's (epoch, seconds).
        """
        import pandas as pd
        from oct.results.report import ReportResults

        _stats_db(self)
        report = ReportResults(10, 1)
        frame = pd.DataFrame({
            "epoch": [1.0, 2.0, 3.0],
            "custom_timers": ['{"nap": 0.1}', "{}", '{"nap": 0.2, "db": 0.3}'],
        })
        report._get_all_timers(frame)
        self.assertEqual(dict(report._timers_values), {"nap": [(1.0, 0.1), (3.0, 0.2)], "db": [(3.0, 0.3)]})
        self.assertEqual(report.total_timers, 3)

    def test_time_grouper(self) -> None:
        """
        The report's ``_get_processed_dataframe`` (oct/results/report.py)
        groups results by ``pd.TimeGrouper('2S')`` (gone since pandas 0.25):
        one row per 2 s of results, with the right counts, and no warning
        about the ``S`` alias (pandas 2.2 renamed it ``s``).
        """
        import pandas as pd
        from oct.results.report import ReportResults

        _stats_db(self)
        report = ReportResults(10, 2)
        frame = pd.DataFrame({"epoch": [1000.0, 1000.5, 1001.9, 1002.1, 1005.0],
                              "scriptrun_time": [0.1, 0.2, 0.3, 0.4, 0.5]})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            processed = report._get_processed_dataframe(frame)
            grouper = pd.TimeGrouper("10S")
        self.assertEqual(list(processed["compiled"]["count"]), [3.0, 1.0, 1.0])
        self.assertEqual(grouper.freq, pd.Grouper(freq="10s").freq)

    def test_docs_list_every_bridge(self) -> None:
        """
        docs/hq.rst names every bridge and each oct line that needs it, and
        each of those lines is in oct's code as pip installed it.
        """
        page = " ".join((ROOT / "docs" / "hq.rst").read_text().split())
        oct_root = Path(str(importlib.metadata.distribution("oct").locate_file("")))
        for bridge in BRIDGES:
            self.assertIn(f"``{bridge.old}``", page)
            for file, code in bridge.needed_by:
                self.assertIn(f"{file}: ``{code}``", page)
                self.assertIn(code, (oct_root / file).read_text(), file)

    def test_oct_files_as_installed(self) -> None:
        """
        oct's files are as pip installed them: each of its Python files
        matches the hash in its install RECORD (the bridges live in our
        process, not in oct's code).
        """
        checked = 0
        for file in importlib.metadata.distribution("oct").files or []:
            if file.hash is None or file.suffix != ".py":
                continue
            digest = hashlib.new(file.hash.mode, Path(str(file.locate())).read_bytes()).digest()
            self.assertEqual(base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), file.hash.value, str(file))
            checked += 1
        self.assertGreater(checked, 20)

    def _python(self, code: str) -> tuple[str, str, int]:
        import subprocess

        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        return done.stdout, done.stderr, done.returncode


class CommandTests(TestCase):
    """``oct-hq``'s answers to bad input: one line, no traceback."""

    timeout = 60

    def setUp(self) -> None:
        require_hq(self)
        self.folder = Path(self.mktemp()).absolute()
        self.folder.mkdir(parents=True)

    async def test_oct_usage(self) -> None:
        """
        ``oct-hq`` takes oct's own command line: with no command it shows
        oct's usage and exits 2, as ``oct`` does.
        """
        out, err, code = await oct_hq([], self.folder)
        self.assertEqual(code, 2)
        self.assertIn("pack-turrets", err)
        self.assertIn("results-to-csv", err)

    async def test_missing_project(self) -> None:
        """
        ``oct-hq run`` of a folder that is not there: one line that names
        the file it looked for, exit status 1.
        """
        out, err, code = await oct_hq(["run", "nowhere"], self.folder)
        self.assertEqual((code, err), (1, "oct-hq: No such file or directory: nowhere/config.json\n"))

    async def test_bad_config(self) -> None:
        """
        A project whose config.json lacks a key oct requires: oct's own
        message on one line, exit status 1.
        """
        project = await new_project(self.folder)
        config = json.loads((project / "config.json").read_text())
        del config["run_time"]
        (project / "config.json").write_text(json.dumps(config))
        out, err, code = await oct_hq(["run", "P"], self.folder)
        self.assertEqual((code, err), (1, "oct-hq: Error: the required configuration key run_time is not define\n"))

    async def test_port_in_use(self) -> None:
        """
        A results port another program holds: one line that says so and
        which ports oct binds, exit status 1.
        """
        publish, rc, external = free_ports(3)
        project = await new_project(self.folder, publish_port=publish, rc_port=rc, external_publisher=external)
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(("0.0.0.0", rc))
        holder.listen()
        out, err, code = await oct_hq(["run", str(project)], self.folder)
        self.assertEqual(code, 1, out + err)
        (line,) = err.splitlines()
        self.assertTrue(line.startswith("oct-hq: Address already in use"), line)
        self.assertIn(f":{rc}", line)
        self.assertIn("oct binds publish_port, rc_port and external_publisher of config.json", line)

    async def test_oct_not_installed(self) -> None:
        """
        Without oct, ``oct-hq`` says what to install, on one line, exit
        status 2.
        """
        code = (
            "import sys; sys.modules['oct'] = None\n"
            "from octtwisted._hqbridge.cli import main\n"
            "sys.exit(main(['run', 'P']))\n"
        )
        out, err, status = await getProcessOutputAndValue(sys.executable, ["-c", code], env=dict(os.environ))
        self.assertEqual((status, err.decode()), (
            2, "oct-hq: oct is not installed, and the real HQ needs it: pip install 'oct-twisted[hq]'\n"
        ))


class RealHQTests(TestCase):
    """The whole system: the real HQ, through oct-hq, with two of our turrets."""

    timeout = 180

    def setUp(self) -> None:
        require_hq(self)

    async def test_two_turrets(self) -> None:
        """
        The real HQ (``oct-hq new-project``, ``pack-turrets``, ``run``) with
        two of our turrets started from the packages it wrote, for 8 s. It
        stores, for each turret, exactly the results that turret sent
        (its ``--results`` file), in order, but for a short tail sent when
        it had stopped reading (it unbinds at ``stop``); error texts holding
        the word ``status`` are stored as results. Its turret table has
        both turrets with their uuids; its HTML report counts every stored
        row and names both turrets; ``results-to-csv`` exports every row;
        the turrets are ready again after the run.
        """
        work = Path(self.mktemp()).absolute()
        work.mkdir(parents=True)
        publish, rc, external = free_ports(3)
        project = await new_project(
            work, run_time=8, results_ts_interval=1, min_turrets=2,
            publish_port=publish, rc_port=rc, external_publisher=external,
            turrets=[
                {"name": "alpha", "cannons": 3, "rampup": 1, "script": "test_scripts/hq_mix.py"},
                {"name": "beta", "cannons": 2, "rampup": 0, "script": "test_scripts/hq_mix.py"},
            ],
        )
        shutil.copy(SCRIPTS / "hq_mix.py", project / "test_scripts")
        out, err, code = await oct_hq(["pack-turrets", "P"], work)
        self.assertEqual(code, 0, out + err)
        turrets = {}
        for name in ("alpha", "beta"):
            args = ["--tar", str(project / f"{name}.tar.gz"), "--results", str(work / f"{name}.jsonl")]
            turrets[name] = turret = TurretProcess(args, cwd=work)
            self.addCleanup(turret.cleanup)
            await turret.wait_output("ready: ", 30)
        hq = _HQRun(["run", "P"], work)
        self.addCleanup(hq.cleanup)
        self.assertEqual(await hq.wait_exit(120), 0, hq.text[-3000:])
        for turret in turrets.values():
            await turret.wait_output("results written to", 30)
            await turret.wait_output("stopping -> ready", 30)
            self.assertNotIn("Traceback", turret.output)

        (results_dir,) = (project / "results").iterdir()
        database = results_dir / "results.sqlite"
        with sqlite3.connect(database) as reader:
            stored_turrets = reader.execute("SELECT name, uuid, cannons FROM turret ORDER BY name").fetchall()
            rows = reader.execute(f"SELECT {', '.join(COLUMNS)} FROM result ORDER BY id").fetchall()
        self.assertEqual(stored_turrets, [("alpha", turrets["alpha"].uuid, 3), ("beta", turrets["beta"].uuid, 2)])
        dropped = 0
        for name in turrets:
            (sent_file,) = work.glob(f"{name}-*.jsonl")
            sent = [json.loads(line) for line in sent_file.read_text().splitlines()]
            position = {_key(r): i for i, r in enumerate(sent)}
            stored = [position.get(_key(dict(zip(COLUMNS, row)))) for row in rows if row[0] == name]
            self.assertNotIn(None, stored, f"{name}: a stored row that was not sent")
            self.assertEqual(stored, sorted(set(stored)), f"{name}: stored out of order, or twice")
            self.assertGreater(len(stored), 200, name)
            # oct's drain after stop (oct/core/hq.py, _clean_queue) reads
            # one message before its loop and never stores it: at most one
            # result of the run is missing before the last one stored.
            dropped += stored[-1] + 1 - len(stored)
            # The tail it did not take: the transactions in flight at stop,
            # and what was on its way: at most the last half second's (of 8).
            late = len(sent) - stored[-1] - 1
            self.assertLessEqual(late, max(20, len(sent) // 16), f"{name}: {late} of {len(sent)} not stored")
            self.assertTrue(any("status 503" in row[4] for row in rows if row[0] == name), name)
        self.assertLessEqual(dropped, 1)

        html = (results_dir / "results.html").read_text()
        self.assertIn(f'<span class="badge">{len(rows)}</span>transaction', html)
        for name in turrets:
            self.assertIn(f"<td>{name}</td>", html)
        self.assertTrue((results_dir / "All_Transactions_throughput.svg").exists())
        self.assertTrue((results_dir / "nap_response_times.svg").exists())
        self.assertIn(f"created: P/results/{results_dir.name}/results.html", hq.text)

        out, err, code = await oct_hq(["results-to-csv", str(database), str(work / "all.csv")], work)
        self.assertEqual(code, 0, out + err)
        self.assertEqual(len((work / "all.csv").read_text().splitlines()), len(rows) + 1)

    async def test_one_turret_from_two_processes(self) -> None:
        """
        The real HQ with one of our turrets firing from two processes
        (``--processes 2``): its turret table has one row (our uuid, the
        config's 4 cannons), and its results table holds the transactions
        of both workers: every one the workers counted, but for the short
        tail sent once the HQ had stopped reading.
        """
        work = Path(self.mktemp()).absolute()
        work.mkdir(parents=True)
        publish, rc, external = free_ports(3)
        project = await new_project(
            work, run_time=6, results_ts_interval=1, min_turrets=1,
            publish_port=publish, rc_port=rc, external_publisher=external,
            turrets=[{"name": "gamma", "cannons": 4, "rampup": 0, "script": "test_scripts/pid_timer.py"}],
        )
        shutil.copy(SCRIPTS / "pid_timer.py", project / "test_scripts")
        out, err, code = await oct_hq(["pack-turrets", "P"], work)
        self.assertEqual(code, 0, out + err)
        turret = TurretProcess(["--tar", str(project / "gamma.tar.gz"), "--processes", "2"], cwd=work)
        self.addCleanup(turret.cleanup)
        await turret.wait_output("ready: ", 30)
        hq = _HQRun(["run", "P"], work)
        self.addCleanup(hq.cleanup)
        self.assertEqual(await hq.wait_exit(120), 0, hq.text[-3000:])
        await turret.wait_output("stopping -> ready", 30)
        self.assertNotIn("Traceback", turret.output)
        (results_dir,) = (project / "results").iterdir()
        with sqlite3.connect(results_dir / "results.sqlite") as reader:
            stored_turrets = reader.execute("SELECT name, uuid, cannons FROM turret").fetchall()
            timers = [json.loads(t) for (t,) in reader.execute("SELECT custom_timers FROM result")]
        self.assertEqual(stored_turrets, [("gamma", turret.uuid, 4)])
        self.assertEqual(len({int(t["pid"]) for t in timers}), 2)
        counted = [int(n) for n in re.findall(r"worker \d: \S+ run summary: (\d+) transactions",
                                             turret.output)]
        self.assertEqual(len(counted), 2, turret.output[-3000:])
        sent = sum(counted)
        self.assertLessEqual(len(timers), sent)
        self.assertGreaterEqual(len(timers), sent - max(20, sent // 12), (len(timers), sent))
