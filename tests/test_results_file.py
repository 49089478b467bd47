"""
The results file: every result, in order, as CSV or JSON lines, written
off the hot path.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.messages import Result
from octtwisted._hq.wire import encode_result
from octtwisted._stats.csvrows import CSV_COLUMNS
from octtwisted._stats.framewriter import write_file
from octtwisted._stats.results_file import ResultsFile


def now(function: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """A synchronous stand-in for deferToThread."""
    return defer.maybeDeferred(function, *args)


class Later:
    """A stand-in for deferToThread that runs the calls when told."""

    def __init__(self) -> None:
        self.calls: list[tuple[Deferred[Any], Callable[..., Any], tuple[Any, ...]]] = []

    def __call__(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.calls.append((d, function, args))
        return d

    def run_all(self) -> None:
        while self.calls:
            d, function, args = self.calls.pop(0)
            d.callback(function(*args))


def make(i: int, error: str = "", **timers: float) -> Result:
    return Result(turret_name="t", elapsed=i * 0.1, epoch=1e9 + i, scriptrun_time=0.01 * i,
                  error=error, custom_timers=timers)


class ResultsFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.folder = Path(self.mktemp())
        self.folder.mkdir()

    def test_csv_rows_and_columns(self) -> None:
        """
        A CSV file has the fixed columns then one per custom timer, one row
        per result in order; error texts with commas, quotes and newlines
        survive.
        """
        path = self.folder / "r.csv"
        out = ResultsFile(path, self.clock, run_in_thread=now)
        nasty = 'ValueError: a, "b"\nc'
        for i in range(5):
            out.write(make(i, error=nasty if i == 2 else "", login=0.5))
        self.clock.advance(1)
        out.write(make(5))
        self.successResultOf(out.close())
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], list(CSV_COLUMNS) + ["login"])
        self.assertEqual(len(rows), 7)
        self.assertEqual(rows[3][3], nasty)
        self.assertEqual(float(rows[2][2]), 0.01)
        self.assertEqual(rows[2][4], "0.5")
        self.assertEqual(rows[6][4:], [])  # no timer: no cell
        self.assertEqual([float(r[0]) for r in rows[1:]], [1e9 + i for i in range(6)])

    def test_late_timer_gets_a_column(self) -> None:
        """
        A timer first seen after the header was written still gets its
        column: at close the file is rewritten, earlier rows padded.
        """
        path = self.folder / "r.csv"
        out = ResultsFile(path, self.clock, run_in_thread=now)
        out.write(make(0, login=0.1))
        self.clock.advance(1)
        out.write(make(1, search=0.2))
        self.successResultOf(out.close())
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(list(rows[0]), list(CSV_COLUMNS) + ["login", "search"])
        self.assertEqual([(r["login"], r["search"]) for r in rows], [("0.1", ""), ("", "0.2")])

    def test_jsonl(self) -> None:
        """
        A .jsonl file has one JSON object per result, as sent to the HQ.
        """
        path = self.folder / "r.jsonl"
        out = ResultsFile(path, self.clock, run_in_thread=now)
        results = [make(i, login=0.1 * i) for i in range(3)] + [make(3, error="e\ud800")]
        for r in results:
            out.write(r)
        self.successResultOf(out.close())
        lines = path.read_text().splitlines()
        self.assertEqual([json.loads(line) for line in lines[:3]], [r.to_dict() for r in results[:3]])
        self.assertEqual(len(lines), 4)

    def test_jsonl_request_timers(self) -> None:
        """
        A result's request timers are in its .jsonl line's
        ``custom_timers``, with the script's own, as the HQ gets them.
        """
        path = self.folder / "r.jsonl"
        out = ResultsFile(path, self.clock, run_in_thread=now)
        result = attrs.evolve(make(0, login=0.1), request_timers={"GET /": 0.25})
        out.write(result)
        self.successResultOf(out.close())
        line = json.loads(path.read_text())
        self.assertEqual(line["custom_timers"], {"GET /": 0.25, "login": 0.1})
        self.assertEqual(line, result.to_dict())

    def test_frames(self) -> None:
        """
        Given the frames sent to an HQ, a .jsonl file writes them as they
        are, one per line, even where an error text holds what separates
        two frames (``}{"turret_name":``) or the word ``status``.
        """
        path = self.folder / "r.jsonl"
        out = ResultsFile(path, self.clock, run_in_thread=now, frames=True)
        frames = [
            encode_result(make(1)),
            encode_result(make(2, error='x}{"turret_name":"y" status')),
            encode_result(make(3, login=0.5)),
        ]
        out.write_frames(frames)
        self.assertRaises(TypeError, out.write, make(9))
        self.clock.advance(1)
        out.write_frames([encode_result(make(4))])
        self.successResultOf(out.close())
        self.assertEqual(path.read_bytes(), b"\n".join(frames + [encode_result(make(4))]) + b"\n")
        self.assertEqual(out.rows, 4)

    def test_csv_from_frames_equals_csv_from_results(self) -> None:
        """
        Given the frames sent to an HQ, a CSV file is written by the CSV
        process and is byte for byte the file made from the results
        themselves: texts that need quoting, a lone surrogate, the word
        ``status`` escaped on the wire, a timer first seen in a later
        batch, and many batches.
        """
        results = [make(i, login=0.01 * i) for i in range(3000)]
        results[5] = make(5, error='ValueError: a, "b"\nc status')
        results[6] = make(6, error="e\ud800")
        results[2500] = make(2500, search=0.25)
        direct = self.folder / "direct.csv"
        out = ResultsFile(direct, self.clock, run_in_thread=now)
        via = self.folder / "via.csv"
        child = ResultsFile(via, self.clock, run_in_thread=now, frames=True)
        for n, r in enumerate(results):
            out.write(r)
            child.write_frames([encode_result(r)])
            if n % 1000 == 999:
                self.clock.advance(1)
        self.successResultOf(out.close())
        self.successResultOf(child.close())
        self.assertEqual(via.read_bytes(), direct.read_bytes())
        with open(via, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 3000)
        self.assertEqual(rows[5]["error"], 'ValueError: a, "b"\nc status')
        self.assertEqual(rows[2500]["search"], "0.25")

    def test_csv_from_frames_mixed_batch(self) -> None:
        """
        In one batch, successes without timers (the file process's quick
        path) around results with errors and a new timer (parsed) make the
        same file as the results themselves, in order; as do frames of
        another turret name, which the quick path does not recognise.
        """
        results = [make(i) for i in range(20)]
        results[3] = make(3, error="boom")
        results[10] = make(10, login=0.5)
        results[11] = make(11, login=0.25, search=1.0)
        results[15] = attrs.evolve(make(15), turret_name='other "one"')
        direct = self.folder / "direct.csv"
        out = ResultsFile(direct, self.clock, run_in_thread=now)
        via = self.folder / "via.csv"
        child = ResultsFile(via, self.clock, run_in_thread=now, frames=True)
        for r in results:
            out.write(r)
            child.write_frames([encode_result(r)])
        self.successResultOf(out.close())
        self.successResultOf(child.close())
        self.assertEqual(via.read_bytes(), direct.read_bytes())
        with open(via, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["epoch"] for r in rows], [str(1e9 + i) for i in range(20)])
        self.assertEqual((rows[11]["login"], rows[11]["search"]), ("0.25", "1.0"))

    def test_csv_from_frames_without_results(self) -> None:
        """
        A run without a result still gets a CSV file with its header.
        """
        path = self.folder / "r.csv"
        out = ResultsFile(path, self.clock, run_in_thread=now, frames=True)
        self.successResultOf(out.close())
        self.assertEqual(path.read_text().splitlines(), [",".join(CSV_COLUMNS)])

    def test_csv_process_failure_is_logged(self) -> None:
        """
        When the file's own process cannot write (here: its folder does not
        exist), the error it gives is logged with the file's path, and
        close still fires.
        """
        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        path = self.folder / "missing" / "r.csv"
        out = ResultsFile(path, self.clock, run_in_thread=now, frames=True)
        out.write_frames([encode_result(make(1))])
        self.clock.advance(1)
        self.successResultOf(out.close())
        problems = [e for e in events if e.get("log_format", "").startswith("cannot write the results")]
        self.assertEqual(len(problems), 1)
        self.assertIn("No such file", problems[0]["problem"])
        self.assertEqual(problems[0]["path"], str(path))

    def test_hot_path_only_buffers(self) -> None:
        """
        Writing a result hands nothing to the thread: batches go every
        interval, in order, one after the other, and close waits for them.
        """
        path = self.folder / "r.csv"
        later = Later()
        out = ResultsFile(path, self.clock, run_in_thread=later, interval=0.25)
        for i in range(100):
            out.write(make(i))
        self.assertEqual(later.calls, [])
        self.clock.advance(0.25)
        self.assertEqual(len(later.calls), 1)
        out.write(make(100))
        self.clock.advance(0.25)
        self.assertEqual(len(later.calls), 1, "the second batch waits for the first")
        closed = out.close()
        self.assertNoResult(closed)
        while later.calls:
            later.run_all()
        self.successResultOf(closed)
        self.assertEqual(len(path.read_text().splitlines()), 102)
        self.assertEqual(out.rows, 101)

    def test_falling_behind_warned_once(self) -> None:
        """
        When more rows than WARN_WAITING wait for the thread, one warning
        says so; the rows are all written once the thread catches up.
        """
        from octtwisted._stats import results_file

        self.patch(results_file, "WARN_WAITING", 10)
        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        later = Later()
        out = ResultsFile(self.folder / "r.csv", self.clock, run_in_thread=later)
        for second in range(3):
            for i in range(8):
                out.write(make(i))
            self.clock.advance(1)
        warned = [e for e in events if "falls behind" in e.get("log_format", "")]
        self.assertEqual([e["waiting"] for e in warned], [16])
        closed = out.close()
        while later.calls:
            later.run_all()
        self.successResultOf(closed)
        self.assertEqual((out.rows, out.waiting), (24, 0))

    def test_write_error_logged(self) -> None:
        """
        A file that cannot be written is one error line naming it; close
        still fires.
        """
        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        path = self.folder / "missing" / "r.csv"
        out = ResultsFile(path, self.clock, run_in_thread=now)
        out.write(make(0))
        self.successResultOf(out.close())
        errors = [e for e in events if "cannot write the results" in e.get("log_format", "")]
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["path"], str(path))


class _Trickle:
    """A binary stream that returns at most ``size`` bytes per read1."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data = data
        self.size = size

    def read1(self, limit: int) -> bytes:
        chunk, self.data = self.data[: self.size], self.data[self.size :]
        return chunk


class FrameWriterTests(SynchronousTestCase):
    def test_frames_cut_apart_whatever_the_reads(self) -> None:
        """
        Frames read a few bytes at a time (reads ending inside a frame and
        inside the sequence between two frames) become the same lines, in
        CSV and in JSON lines, as frames read at once.
        """
        frames = [encode_result(make(i, error="x}{" if i == 3 else "")) for i in range(50)]
        data = b"".join(frames)
        folder = Path(self.mktemp())
        folder.mkdir()
        for kind in ("csv", "jsonl"):
            whole = folder / f"whole.{kind}"
            self.assertEqual(write_file(kind, _Trickle(data, 1 << 20), whole), 50)
            for size in (1, 7, 16, 150):
                trickled = folder / f"t{size}.{kind}"
                self.assertEqual(write_file(kind, _Trickle(data, size), trickled), 50)
                self.assertEqual(trickled.read_bytes(), whole.read_bytes(), (kind, size))
        self.assertEqual((folder / "whole.jsonl").read_bytes(), b"\n".join(frames) + b"\n")
