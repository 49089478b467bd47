"""
A full disk under ``--results``, ``--report`` and ``--summary-json``
(issue 26, item 6): one log line naming the file and the error, the run
and the results to the HQ go on, the file is cut after its last whole
line and said to be incomplete, and a standalone run exits 74.

The unit tests inject the error with ``/dev/full`` (every write fails
with ``ENOSPC``); the end-to-end tests run the real process with its
files on a 1 MiB tmpfs (they are skipped, saying why, where one cannot
be mounted).
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core.config import load_config
from octtwisted._core.messages import Result
from octtwisted._edge.standalone import (
    EXIT_ALL_FAILED,
    EXIT_FILES_INCOMPLETE,
    EXIT_THRESHOLDS_FAILED,
    exit_status,
)
from octtwisted._hq.wire import encode_result
from octtwisted._stats.outputs import OutputSettings, RunOutputs
from octtwisted._stats.results_file import (
    IncompleteFile,
    ResultsFile,
    cut_to_last_line,
    join_parts,
    mark_incomplete,
    part_files,
    results_part,
)
from octtwisted._stats.summary import RunStats
from octtwisted.testing import FakeHQ
from tests.helpers import TurretProcess, write_config

DEV_FULL = Path("/dev/full")
NO_SPACE = os.strerror(errno.ENOSPC)


def now(function: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """A synchronous stand-in for deferToThread."""
    return defer.maybeDeferred(function, *args)


def make(i: int, error: str = "") -> Result:
    return Result(turret_name="t", elapsed=i * 0.1, epoch=1e9 + i, scriptrun_time=0.01,
                  error=error, custom_timers={})


def full_file(folder: Path, name: str) -> Path:
    """``folder/name``, a link to ``/dev/full``: every write fails with ENOSPC."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.symlink_to(DEV_FULL)
    return path


async def exited_incomplete(case: TestCase, turret: Any, path: Path) -> str:
    """
    The turret exits 74 without a traceback, one log line names ``path``
    and the full disk, and the summary says the file is incomplete; its
    output.
    """
    case.assertEqual(await turret.wait_exit(60), 74, turret.output)
    out: str = turret.output
    case.assertNotIn("Traceback", out)
    lines = [line for line in out.splitlines() if "cannot write" in line]
    case.assertEqual(len(lines), 1, out)
    case.assertIn(str(path), lines[0])
    case.assertIn(NO_SPACE, lines[0])
    case.assertIn(f"INCOMPLETE: {path}: {NO_SPACE}", out)
    return out


class LogCatcher:
    """The log events of a test."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: list[LogEvent] = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def matching(self, text: str) -> list[LogEvent]:
        return [e for e in self.events if text in e.get("log_format", "")]


class ResultsFileFullTests(SynchronousTestCase):
    def setUp(self) -> None:
        if not DEV_FULL.exists():
            self.skipTest("no /dev/full on this system")
        self.clock = Clock()
        self.folder = Path(self.mktemp()).absolute()
        self.log = LogCatcher(self)

    def test_standalone_writer(self) -> None:
        """
        Results formatted by the turret itself, written to a file that
        fails with ENOSPC: one error line naming the file and the error
        (however many batches come after), every later result is still
        taken without raising, close fires, and ``problem`` says why.
        """
        path = full_file(self.folder, "r.csv")
        out = ResultsFile(path, self.clock, run_in_thread=now)
        for batch in range(5):
            for i in range(2000):
                out.write(make(i, error="boom" if i % 7 == 0 else ""))
            self.clock.advance(1)
        self.successResultOf(out.close())
        [line] = self.log.matching("cannot write the results")
        self.assertEqual(line["path"], str(path))
        self.assertEqual(line["problem"], NO_SPACE)
        self.assertEqual(out.problem, NO_SPACE)
        self.assertEqual(out.rows, 10_000)

    def test_frames_writer_process(self) -> None:
        """
        Obeying an HQ, the file's own process fails with ENOSPC: the same
        one line with its error, close fires, ``problem`` says why.
        """
        path = full_file(self.folder, "r.jsonl")
        out = ResultsFile(path, self.clock, run_in_thread=now, frames=True)
        for batch in range(3):
            out.write_frames([encode_result(make(i)) for i in range(64)])
            self.clock.advance(1)
        self.successResultOf(out.close())
        [line] = self.log.matching("cannot write the results")
        self.assertEqual(line["path"], str(path))
        self.assertEqual(line["problem"], NO_SPACE)
        self.assertEqual(out.problem, NO_SPACE)

    def test_whole_file_has_no_problem(self) -> None:
        """
        A file written whole has no ``problem`` and logs no error.
        """
        self.folder.mkdir()
        out = ResultsFile(self.folder / "r.csv", self.clock, run_in_thread=now)
        out.write(make(1))
        self.successResultOf(out.close())
        self.assertIsNone(out.problem)
        self.assertEqual(self.log.matching("cannot write"), [])


class CutAndMarkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = Path(self.mktemp()).absolute()
        self.folder.mkdir()

    def test_cut_to_last_line(self) -> None:
        """
        A file the disk took half a row of ends after its last whole line;
        one with no line break at all is emptied; a whole one is kept.
        """
        half = self.folder / "half.csv"
        half.write_bytes(b"a,b\n1,2\n" + b"3," * 50_000)
        cut_to_last_line(half)
        self.assertEqual(half.read_bytes(), b"a,b\n1,2\n")
        none = self.folder / "none.csv"
        none.write_bytes(b"epoch,ela")
        cut_to_last_line(none)
        self.assertEqual(none.read_bytes(), b"")
        whole = self.folder / "whole.csv"
        whole.write_bytes(b"a\n1\n")
        cut_to_last_line(whole)
        self.assertEqual(whole.read_bytes(), b"a\n1\n")
        cut_to_last_line(self.folder / "missing.csv")  # nothing raised

    def test_only_parts_are_marked(self) -> None:
        """
        A worker's part that could not be written whole is renamed to say
        so (still one of the file's parts); another file is left alone.
        """
        path = self.folder / "r.csv"
        part = results_part(path, 1, 2)
        part.write_text("epoch\n")
        mark_incomplete(part)
        self.assertFalse(part.exists())
        self.assertEqual([p.name for p in part_files(path)], [".r.part1-2.incomplete.csv"])
        path.write_text("epoch\n")
        mark_incomplete(path)
        self.assertEqual(path.read_text(), "epoch\n")

    def test_join_with_an_incomplete_part(self) -> None:
        """
        Joining parts one of which is incomplete joins every row there is,
        removes the parts, then raises IncompleteFile saying how many parts
        were incomplete.
        """
        path = self.folder / "r.jsonl"
        results_part(path, 0).write_text('{"a":1}\n{"a":2}\n')
        bad = results_part(path, 1)
        bad.write_text('{"a":3}\n')
        mark_incomplete(bad)
        failure = self.assertRaises(IncompleteFile, join_parts, path)
        self.assertIn("1 of the 2 workers' parts", failure.problem)
        self.assertEqual(path.read_text().splitlines(), ['{"a":1}', '{"a":2}', '{"a":3}'])
        self.assertEqual(part_files(path), [])


class RunOutputsFullTests(SynchronousTestCase):
    def setUp(self) -> None:
        if not DEV_FULL.exists():
            self.skipTest("no /dev/full on this system")
        self.folder = Path(self.mktemp()).absolute()
        self.clock = Clock()
        self.config = load_config(write_config(
            self.folder, hq_address=None, hq_publisher=None, hq_rc=None), standalone=True)
        self.log = LogCatcher(self)

    def run_once(self, **settings: Any) -> RunOutputs:
        outputs = RunOutputs(config=self.config, settings=OutputSettings(version="1", **settings),
                             clock=self.clock, turret_id="id", run_in_thread=now)
        stats = RunStats()
        outputs.run_started(stats, lambda: 1)
        for i in range(100):
            stats.record(make(i))
            if outputs.on_result is not None:
                outputs.on_result(make(i))
        self.clock.advance(1)
        outputs.run_ended(stats.summary(duration=1.0, cannons=1, cannons_reached=1))
        self.successResultOf(outputs.idle())
        return outputs

    def test_results_file_incomplete(self) -> None:
        """
        A results file that hit ENOSPC is in ``incomplete`` with its error,
        not in ``written``; the one error line is the file's own (no
        second one, no ``results written``).
        """
        path = full_file(self.folder, "r.csv")
        outputs = self.run_once(results=path)
        self.assertEqual(outputs.incomplete, {path: NO_SPACE})
        self.assertEqual(outputs.written, [])
        self.assertEqual(len(self.log.matching("cannot write")), 1)
        self.assertEqual(self.log.matching("results written"), [])

    def test_report_incomplete(self) -> None:
        """
        A report that hit ENOSPC: one line naming it and the error, and it
        is in ``incomplete``.
        """
        path = full_file(self.folder, "r.html")
        outputs = self.run_once(report=path)
        self.assertEqual(outputs.incomplete, {path: NO_SPACE})
        [line] = self.log.matching("cannot write")
        self.assertEqual((line["path"], line["problem"]), (str(path), NO_SPACE))

    def test_parts_incomplete(self) -> None:
        """
        With ``--processes``, a worker's part marked incomplete makes the
        joined file incomplete, said in one line naming it.
        """
        path = self.folder / "r.csv"
        bad = results_part(path, 0)
        bad.write_text("epoch,elapsed,scriptrun_time,error\n1,2,3,\n")
        mark_incomplete(bad)
        outputs = self.run_once(results=path, results_parts=2)
        self.assertEqual(list(outputs.incomplete), [path])
        [line] = self.log.matching("is incomplete")
        self.assertEqual(line["path"], str(path))
        self.assertEqual(path.read_text().splitlines()[1], "1,2,3,")

    def test_exit_status(self) -> None:
        """
        A run with an incomplete file exits 74, unless no transaction
        succeeded (1); 74 comes before a failed threshold's 99.
        """
        stats = RunStats()
        stats.record(make(1))
        summary = stats.summary(duration=1.0, cannons=1, cannons_reached=1)
        self.assertEqual(exit_status(summary, True), EXIT_FILES_INCOMPLETE)
        self.assertEqual(exit_status(summary, False), 0)
        self.assertEqual(exit_status(None, True), EXIT_ALL_FAILED)
        self.assertEqual((EXIT_FILES_INCOMPLETE, EXIT_THRESHOLDS_FAILED), (74, 99))


class TmpfsTestCase(TestCase):
    """
    Tests whose files go to a 1 MiB tmpfs, mounted for the test and
    unmounted after it.
    """

    timeout = 120

    def setUp(self) -> None:
        self.folder = Path(self.mktemp()).absolute()
        self.disk = self.folder / "disk"
        self.disk.mkdir(parents=True)
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(self.disk)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", str(self.disk)], check=False)

    def fill(self, leave: int) -> None:
        """Fill the tmpfs but ``leave`` bytes."""
        stat = os.statvfs(self.disk)
        free = stat.f_bavail * stat.f_frsize
        (self.disk / "filler").write_bytes(b"\0" * max(0, free - leave))

    def turret(self, *args: str, hq: FakeHQ | None = None, **keys: Any) -> TurretProcess:
        hq_keys = hq.turret_config() if hq is not None else {
            "hq_address": None, "hq_publisher": None, "hq_rc": None}
        # About 1,000 results a second per cannon: far more than the disk
        # holds, without burning a shared machine's cores.
        config = write_config(self.folder, script="quick.py", **{"pacing": 0.001, **hq_keys, **keys})
        turret = TurretProcess(["-c", str(config), *args], cwd=self.folder)
        self.addCleanup(turret.cleanup)
        return turret


def assert_whole_lines(case: TestCase, path: Path, kind: str) -> int:
    """Every line of ``path`` is whole (a CSV row of 4 cells, a JSON object); their count."""
    lines = path.read_bytes().split(b"\n")
    case.assertEqual(lines[-1], b"", "the file ends with a line break")
    for line in lines[:-1]:
        if kind == "csv":
            case.assertEqual(len(line.split(b",")), 4, line)
        else:
            json.loads(line)
    return len(lines) - 1


class StandaloneFullDiskTests(TmpfsTestCase):
    async def test_results_on_a_full_disk(self) -> None:
        """
        ``--results`` on a tmpfs with 64 KiB left: the run goes on to its
        end; one line names the file and ``No space left on device``; the
        summary (table and JSON) says the file is incomplete; the exit
        status is 74; the file holds whole rows only, fewer than the
        transactions; no traceback.
        """
        self.fill(64 * 1024)
        results = self.disk / "r.csv"
        turret = self.turret("--standalone", "--duration", "3", "--results", str(results),
                             "--summary-json", "s.json", cannons=2)
        out = await exited_incomplete(self, turret, results)
        self.assertNotIn("Results: ", out)
        summary = json.loads((self.folder / "s.json").read_text())
        self.assertEqual(summary["incomplete_files"], [{"path": str(results), "problem": NO_SPACE}])
        rows = assert_whole_lines(self, results, "csv") - 1
        self.assertGreater(summary["transactions"], rows)
        self.assertGreater(rows, 100)

    async def test_report_on_a_full_disk(self) -> None:
        """
        ``--report`` on a tmpfs with 4 KiB left: one line names the report
        and the error, the summary says it is incomplete, exit 74.
        """
        self.fill(4 * 1024)
        page = self.disk / "r.html"
        turret = self.turret("--standalone", "--duration", "1", "--report", str(page), cannons=1,
                             pacing=0.01)
        out = await exited_incomplete(self, turret, page)

    async def test_summary_json_on_a_full_disk(self) -> None:
        """
        ``--summary-json`` on a full tmpfs: one line names it, the table
        says it is incomplete, exit 74.
        """
        self.fill(0)
        path = self.disk / "s.json"
        turret = self.turret("--standalone", "--duration", "1", "--summary-json", str(path),
                             cannons=1, pacing=0.01)
        self.assertEqual(await turret.wait_exit(60), 74, turret.output)
        self.assertNotIn("Traceback", turret.output)
        self.assertIn(f"INCOMPLETE: {path}: {NO_SPACE}", turret.output)
        self.assertIn("cannot write the summary to", turret.output)

    async def test_processes_part_on_a_full_disk(self) -> None:
        """
        ``--processes 2 --results`` on a tmpfs with 64 KiB left: the
        workers' parts are marked incomplete, the joined file cannot be
        written either: it is removed, the parts are kept (whole lines
        only) and named; the file is said incomplete (table and JSON), exit
        74, no traceback.
        """
        self.fill(64 * 1024)
        results = self.disk / "r.jsonl"
        turret = self.turret("--standalone", "--duration", "3", "--processes", "2",
                             "--results", str(results), "--summary-json", "s.json", cannons=2)
        self.assertEqual(await turret.wait_exit(60), 74, turret.output)
        out = turret.output
        self.assertNotIn("Traceback", out)
        self.assertIn(f"INCOMPLETE: {results}: ", out)
        summary = json.loads((self.folder / "s.json").read_text())
        self.assertEqual([f["path"] for f in summary["incomplete_files"]], [str(results)])
        self.assertIn("the rows written are in the workers' parts, kept beside it", out)
        parts = sorted(self.disk.glob(".r.part*"))
        self.assertTrue(parts)
        self.assertFalse(results.exists())
        for part in parts:
            self.assertIn(part.name, out)
            assert_whole_lines(self, part, "jsonl")


class HQFullDiskTests(TmpfsTestCase):
    async def test_results_flow_to_the_hq(self) -> None:
        """
        Obeying an HQ, with ``--results`` on a tmpfs with 16 KiB left:
        one line names the file and the error, and every result the
        turret made reaches the HQ (the count at ``kill``), far more than
        the file could hold.
        """
        self.fill(16 * 1024)
        hq = FakeHQ()
        hq.start()
        self.addCleanup(hq.stop)
        turret = self.turret("--results", str(self.disk / "run.csv"), hq=hq, cannons=2)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await turret.wait_output("cannot write the results", timeout=60)
        await hq.wait_for_results(len(hq.results) + 1000, timeout=60)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(60), 0, turret.output)
        out = turret.output
        made = int(re.search(r"turret killed: (\d+) results", out)[1])
        await hq.wait_for_results(made, timeout=60)
        self.assertEqual(len(hq.results), made)
        self.assertNotIn("Traceback", out)
        lines = [line for line in out.splitlines() if "cannot write" in line]
        self.assertEqual(len(lines), 1, out)
        self.assertIn(NO_SPACE, lines[0])
        [path] = self.disk.glob("run-*.csv")
        self.assertLess(assert_whole_lines(self, path, "csv"), made)
