"""
``--results PATH``: every result of a run, one row each, in a file.

``.csv``: a header, then ``epoch,elapsed,scriptrun_time,error`` and one
column per custom timer (seconds; empty where a result has no such timer).
``.jsonl``: one JSON object per line, the result as it goes to the HQ
(``turret_name``, ``epoch``, ``elapsed``, ``scriptrun_time``, ``error``,
``custom_timers``).

The hot path only appends the result to a list, or a batch of the frames
sent to the HQ to a ``bytearray``. Every :data:`FLUSH_INTERVAL` seconds
that is handed over at once to a worker thread, which writes it (one batch at a time, in
order); :meth:`close` hands over the rest and fires once everything is on
disk. What a batch costs the reactor depends on what the turret already
has:

* Obeying an HQ, every result is already a JSON frame (the bytes sent;
  ``frames=True``): the batch is those bytes end to end, and the file
  (``.jsonl`` or ``.csv``) is written by a process of its own
  (:mod:`.framewriter`), which reads them from a pipe, cuts them into
  lines and formats them on another core.
* Standalone, no frame is made: a batch is formatted on the reactor at
  once (one ``orjson.dumps``, a few milliseconds; doing it in the thread
  made the two threads fight for the GIL, which cost more).

CSV columns are the timers seen in the first batch, in the order first
seen. A timer first seen later gets a column too: at the end the file is
rewritten once (in the worker thread, or the file's own process) with the
full header and the earlier rows padded.
"""

from __future__ import annotations

import csv
import functools
import glob
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import orjson
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from octtwisted._core import logs
from octtwisted._core.messages import Result
from octtwisted._stats.csvrows import CSVFormat

#: Seconds between two hand-overs to the writer thread.
FLUSH_INTERVAL = 0.05

#: Rows waiting to be written past which a warning is logged (once): the
#: disk falls behind, and memory grows.
WARN_WAITING = 2_000_000

#: Seconds the results file's own process may take to finish once its
#: input has ended.
CHILD_TIMEOUT = 120.0

#: The file extensions understood, and their format.
FORMATS = {".csv": "csv", ".jsonl": "jsonl"}

RunInThread = Callable[..., "Deferred[object]"]

#: A batch taken for the file: encodes it (on the reactor; it may raise).
Encode = Callable[[], "bytes | bytearray"]


class IncompleteFile(Exception):
    """
    A results file (or report) that could not be written whole: what is
    on disk is a beginning of it at best.

    :ivar problem: why, in one line (``No space left on device``).
    :ivar logged: that was logged already, naming the file.
    """

    def __init__(self, problem: str, *, logged: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.logged = logged


def results_format(path: str | Path) -> str | None:
    """
    ``csv`` or ``jsonl`` from the file's extension, or None.
    """
    return FORMATS.get(Path(path).suffix.lower())


def _encode_jsonl(results: list[Result]) -> bytes:
    """
    One JSON object per line. The whole batch is one ``orjson.dumps`` of a
    list of objects, cut into lines where one object ends and the next
    begins: ``},{"`` appears nowhere else (a quote inside a string is
    escaped, and a result holds no list).
    """
    if not results:
        return b""
    rows: list[dict[str, Any]] = [
        {
            "turret_name": r.turret_name,
            "elapsed": r.elapsed,
            "epoch": r.epoch,
            "scriptrun_time": r.scriptrun_time,
            "error": r.error,
            # as the HQ gets them: the request timers too
            "custom_timers": r.hq_timers() if r.request_timers else r.custom_timers,
        }
        for r in results
    ]
    try:
        data = orjson.dumps(rows)
    except TypeError:  # a lone surrogate: the standard encoder escapes it
        return b"".join(
            json.dumps({**row, "custom_timers": dict(row["custom_timers"])}).encode("ascii")
            + b"\n"
            for row in rows
        )
    return data[1:-1].replace(b'},{"', b'}\n{"') + b"\n"


class _File:
    """
    The file itself: opened at the first write, in the writer thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    def write(self, data: bytes | bytearray) -> None:
        if self._file is None:
            self._file = open(self.path, "wb")
        if data:
            self._file.write(data)

    def close(self) -> None:
        if self._file is None:
            self._file = open(self.path, "wb")
        self._file.close()

    def discard(self) -> None:
        """
        After a failed write: let go of the file, whatever its state (a
        full disk may refuse the buffer's last flush too).
        """
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass


class _ChildFile:
    """
    A results file written by a process of its own (:mod:`.framewriter`),
    fed with result frames: started at the first write, in the writer
    thread.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._process: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "octtwisted._stats.framewriter", self.kind, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self._process

    def write(self, data: bytes | bytearray) -> None:
        process = self._process or self._start()
        if data:
            assert process.stdin is not None
            try:
                process.stdin.write(data)
            except BrokenPipeError:
                self.close()  # says why the process ended
                raise

    def close(self) -> None:
        process = self._process or self._start()
        assert process.stdin is not None and process.stderr is not None
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = process.wait(CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise OSError(f"the results writer did not finish within {CHILD_TIMEOUT:g} s") from None
        if code != 0:
            problem = process.stderr.read().decode("utf-8", "replace").strip().splitlines()
            raise OSError(problem[-1] if problem else f"the results writer exited with {code}")

    def discard(self) -> None:
        """
        After a failed write: end the file's process, if it still runs.
        """
        if self._process is None or self._process.returncode is not None:
            return
        try:
            self.close()
        except OSError:
            pass


class _Frames:
    """
    Result frames, copied end to end into one ``bytearray`` a batch sent
    to the HQ at a time (up to 64 frames), and taken for the results file's
    own process, which cuts them apart (:mod:`.framewriter`). Measured at
    190,000 results/s: holding the frames themselves until the batch is
    taken cost 15% of the rate, cutting them into lines on the reactor (one
    ``bytes.replace`` over the batch) 6%, and a call per frame 1.5%.
    """

    def __init__(self) -> None:
        self._bytes = bytearray()
        self._count = 0

    def __bool__(self) -> bool:
        return self._count > 0

    def write(self, frames: list[bytes]) -> None:
        self._bytes += b"".join(frames)
        self._count += len(frames)

    def take(self) -> tuple[Encode, int]:
        """
        The frames so far, end to end (no longer written to; they go to
        the file's own process as they are), and how many there are.
        """
        data, self._bytes = self._bytes, bytearray()
        count, self._count = self._count, 0
        return (lambda: data), count


class _Results:
    """
    Results, appended as they come (the hot path: a bound
    ``list.append``) and taken a batch at a time, to be encoded in
    ``format``.
    """

    def __init__(self, format: CSVFormat | _JSONLFormat) -> None:
        self._format = format
        self._list: list[Result] = []
        self.write: Callable[[Result], None] = self._list.append

    def __bool__(self) -> bool:
        return bool(self._list)

    def take(self) -> tuple[Encode, int]:
        # The same list stays: its append is bound where results are made.
        batch = self._list[:]
        del self._list[:]
        return functools.partial(self._format.encode, batch), len(batch)


class _FramesFormat:
    """
    Frames go to the file's own process as they are: it finishes the file.
    """

    def finish(self, path: Path) -> None:
        pass


class _JSONLFormat:
    def encode(self, results: list[Any]) -> bytes:
        return _encode_jsonl(results)

    def finish(self, path: Path) -> None:
        pass


class ResultsFile:
    """
    Writes a run's results to ``path`` (see the module's doc).

    :param run_in_thread: runs a function in a worker thread and returns a
        Deferred of its result (default: the reactor's thread pool); tests
        pass a synchronous one.
    :param frames: the results come as frames sent to the HQ (JSON
        bytes), a batch at a time, to :attr:`write_frames`; else one
        result at a time to :attr:`write`.
    """

    log = logs.logger(logs.RESULTS)

    def __init__(
        self,
        path: Path,
        clock: IReactorTime,
        *,
        run_in_thread: RunInThread | None = None,
        interval: float = FLUSH_INTERVAL,
        frames: bool = False,
    ) -> None:
        kind = results_format(path)
        if kind is None:
            raise ValueError(f"{path}: the results file must end with .csv or .jsonl")
        self.path = path
        self._run_in_thread = run_in_thread or threads.deferToThread
        self._format: CSVFormat | _JSONLFormat | _FramesFormat
        self._file: _File | _ChildFile
        self._source: _Results | _Frames
        #: takes one result (the hot path: a bound list.append)
        self.write: Callable[[Result], None] = self._refuse_result
        #: takes a batch of frames (``frames=True``)
        self.write_frames: Callable[[list[bytes]], None] = self._refuse_frames
        if frames:
            self._source = _Frames()
            self.write_frames = self._source.write
            self._format = _FramesFormat()
            self._file = _ChildFile(path, kind)
        else:
            self._format = CSVFormat() if kind == "csv" else _JSONLFormat()
            self._source = _Results(self._format)
            self.write = self._source.write
            self._file = _File(path)
        self._chain: Deferred[object] = defer.succeed(None)
        self._failed = False
        #: why the file is incomplete, once a write failed
        self.problem: str | None = None
        self._closed: Deferred[None] | None = None
        #: rows handed to the writer so far
        self.rows = 0
        #: rows handed to the writer and not yet written
        self.waiting = 0
        #: the most rows that were waiting at once
        self.most_waiting = 0
        self._warned = False
        self._loop = LoopingCall(self._hand_over)
        self._loop.clock = clock
        self._loop.start(interval, now=False)

    def _refuse_frames(self, frames: list[bytes]) -> None:
        raise TypeError("this results file takes results: made with frames=False")

    def _refuse_result(self, result: Result) -> None:
        raise TypeError("this results file takes frames: made with frames=True")

    def _hand_over(self) -> None:
        source = self._source
        if not source:
            return
        encode, count = source.take()
        self.rows += count
        if self._failed:
            return
        try:
            data = encode()
        except Exception as e:
            self._write_failed(e)
            return
        self.waiting += count
        self.most_waiting = max(self.most_waiting, self.waiting)
        if self.waiting > WARN_WAITING and not self._warned:
            self._warned = True
            self.log.warn(
                "the results file {path} falls behind: {waiting} rows wait to be written",
                path=str(self.path),
                waiting=self.waiting,
            )
        self._queue(self._file.write, data)

        def written(_: object) -> None:
            self.waiting -= count

        self._chain.addCallback(written)

    def _queue(self, function: Callable[..., None], *args: object) -> None:
        def run(_: object) -> Deferred[object] | None:
            if self._failed:
                return None
            return self._run_in_thread(function, *args)

        self._chain.addCallback(run)
        self._chain.addErrback(self._write_failed)

    def _finish(self) -> None:
        self._file.close()
        self._format.finish(self.path)

    def _write_failed(self, failure: object) -> None:
        if self._failed:
            return
        self._failed = True
        error = getattr(failure, "value", failure)
        self.problem = getattr(error, "strerror", None) or str(error)
        self.log.error(
            "cannot write the results to {path}: {problem}; the file is incomplete, "
            "the run goes on",
            path=str(self.path),
            problem=self.problem,
        )

    def _discard(self) -> None:
        """
        In the writer thread, once a write failed: let go of the file, cut
        the row the disk took half of (:func:`cut_to_last_line`), and mark
        a worker's part as incomplete (:func:`mark_incomplete`).
        """
        self._file.discard()
        cut_to_last_line(self.path)
        mark_incomplete(self.path)

    def close(self) -> Deferred[None]:
        """
        Write what is left and close the file; fires when it is done (also
        when writing failed: that was logged when it happened, and
        :attr:`problem` says why).
        """
        if self._closed is None:
            if self._loop.running:
                self._loop.stop()
            self._hand_over()
            if isinstance(self._format, CSVFormat) and self._format.header_names is None:
                self._queue(self._file.write, self._format.encode([]))  # the header alone
            self._queue(self._finish)
            done: Deferred[None] = Deferred()

            def discard(_: object) -> Deferred[object] | None:
                if self._failed:
                    return self._run_in_thread(self._discard)
                return None

            def finished(_: object) -> None:
                done.callback(None)

            self._chain.addCallback(discard)
            self._chain.addBoth(finished)
            self._closed = done
        waiting: Deferred[None] = Deferred()

        def tell(result: object) -> object:
            waiting.callback(None)
            return result

        self._closed.addBoth(tell)
        return waiting


def read_rows(path: Path) -> Iterable[dict[str, str]]:
    """
    The rows of a CSV results file as dicts (a helper for tests and tools).
    """
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


# With --processes: each worker writes a part, joined into one file.


def results_part(path: Path, index: int, generation: int = 0) -> Path:
    """
    Where worker ``index`` (its ``generation``-th process: a fresh one
    replaces one that died) writes its part of the results file ``path``.
    """
    return path.with_name(f".{path.stem}.part{index}-{generation}{path.suffix}")


def cut_to_last_line(path: Path) -> None:
    """
    Cut a file that could not be written whole after its last line break:
    a reader finds whole rows only (cutting takes no disk space). Nothing
    happens if the file cannot be read.
    """
    try:
        with open(path, "r+b") as f:
            end = f.seek(0, 2)
            while end > 0:
                start = max(0, end - (1 << 16))
                f.seek(start)
                block = f.read(end - start)
                at = block.rfind(b"\n")
                if at >= 0:
                    f.truncate(start + at + 1)
                    return
                end = start
            f.truncate(0)
    except OSError:
        pass


#: Before a part's extension: the part could not be written whole.
INCOMPLETE_PART = ".incomplete"

_PART = re.compile(r"^\..*\.part\d+-\d+$")


def mark_incomplete(path: Path) -> None:
    """
    If ``path`` is a worker's part (:func:`results_part`), rename it to
    say it is incomplete (``.NAME.part0-0.incomplete.csv``), so that the
    main process, joining the parts, knows (a rename takes no disk space).
    Other files are left as they are.
    """
    if not _PART.match(path.stem):
        return
    try:
        path.rename(path.with_name(path.stem + INCOMPLETE_PART + path.suffix))
    except OSError:
        pass


def part_files(path: Path) -> list[Path]:
    """The parts of the results file ``path`` there are now, in order."""
    return sorted(path.parent.glob(f".{glob.escape(path.stem)}.part*{glob.escape(path.suffix)}"))


def join_parts(path: Path) -> None:
    """
    Join the workers' parts into the results file ``path``, then remove
    them. JSON lines are joined as they are; CSV parts may have different
    timer columns, so the file's header is the union of theirs (in the
    order first seen) and each row is padded.

    :raise IncompleteFile: once joined, if a worker could not write its
        part whole (:func:`mark_incomplete`): what it wrote is joined. Or
        if the joined file cannot be written (a full disk): then it is
        removed and the parts are kept, with every row they hold.
    """
    parts = part_files(path)
    incomplete = [part for part in parts if part.stem.endswith(INCOMPLETE_PART)]
    try:
        _join(path, parts)
    except OSError as e:
        try:
            path.unlink()
        except OSError:
            pass
        names = ", ".join(part.name for part in parts)
        raise IncompleteFile(
            f"{e.strerror or e}; the rows written are in the workers' parts, kept beside it: {names}"
        ) from None
    for part in parts:
        part.unlink()
    if incomplete:
        raise IncompleteFile(
            f"{len(incomplete)} of the {len(parts)} workers' parts could not be written "
            "whole (see the workers' log lines)"
        )


def _join(path: Path, parts: list[Path]) -> None:
    if results_format(path) == "jsonl":
        with path.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        out.write(chunk)
        return
    columns: list[str] = []
    for part in parts:
        with part.open(newline="") as f:
            for name in next(csv.reader(f), []):
                if name not in columns:
                    columns.append(name)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, columns, restval="")
        writer.writeheader()
        for part in parts:
            with part.open(newline="") as f:
                writer.writerows(csv.DictReader(f))
