"""
``--results PATH``: every result of a run, one row each, in a file.

``.csv``: a header, then ``epoch,elapsed,scriptrun_time,error`` and one
column per custom timer (seconds; empty where a result has no such timer).
``.jsonl``: one JSON object per line, the result as it goes to the HQ
(``turret_name``, ``elapsed``, ``epoch``, ``scriptrun_time``, ``error``,
``custom_timers``). Obeying an HQ, a ``.jsonl`` file is given the very
frames sent (``frames=True``), so it costs no formatting at all.

The hot path only appends the result to a list. Every
:data:`FLUSH_INTERVAL` seconds the list is formatted at once (one
``orjson.dumps``, a few milliseconds on the reactor: doing it in the
thread made the two threads fight for the GIL, which cost more) and the
bytes are handed to a worker thread, which writes them (one batch at a
time, in order); :meth:`close` hands over the rest and fires once
everything is on disk.

CSV columns are the timers seen in the first batch, in the order first
seen. A timer first seen later gets a column too: at :meth:`close` the
file is rewritten once, in the worker thread, with the full header and the
earlier rows padded.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import orjson
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from octtwisted._core import logs
from octtwisted._core.messages import Result

#: Seconds between two hand-overs to the writer thread.
FLUSH_INTERVAL = 0.05

#: Rows waiting to be written past which a warning is logged (once): the
#: disk falls behind, and memory grows.
WARN_WAITING = 2_000_000

#: The file extensions understood, and their format.
FORMATS = {".csv": "csv", ".jsonl": "jsonl"}

#: The first CSV columns; custom timers follow.
CSV_COLUMNS = ("epoch", "elapsed", "scriptrun_time", "error")

RunInThread = Callable[..., "Deferred[object]"]


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
            "custom_timers": r.custom_timers,
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


def _encode_csv_rows(rows: list[tuple[Any, ...]]) -> bytes:
    """
    CSV lines of rows of numbers, ``None`` and empty strings only: one
    ``orjson.dumps`` of the list, cut into lines. JSON writes such rows as
    CSV does (``""`` is a quoted empty cell), once the brackets are gone
    and ``null`` is made an empty cell.
    """
    if not rows:
        return b""
    data = orjson.dumps(rows)
    return data[2:-2].replace(b"],[", b"\n").replace(b"null", b"") + b"\n"


def _header(names: list[str]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerow(CSV_COLUMNS + tuple(names))
    return text.getvalue().encode("utf-8", "backslashreplace")


class _File:
    """
    The file itself: opened at the first write, in the writer thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        if self._file is None:
            self._file = open(self.path, "wb")
        if data:
            self._file.write(data)

    def close(self) -> None:
        if self._file is None:
            self._file = open(self.path, "wb")
        self._file.close()


class _CSVFormat:
    """
    Turns results into CSV lines (on the reactor, a batch at a time).
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.header_names: int | None = None

    def encode(self, results: list[Result]) -> bytes:
        names = self.names
        known = set(names)
        for result in results:
            if result.custom_timers:
                for name in result.custom_timers:
                    if name not in known:
                        known.add(name)
                        names.append(name)
        header = b""
        if self.header_names is None:
            self.header_names = len(names)
            header = _header(names)
        if names:
            rows = [
                (r.epoch, r.elapsed, r.scriptrun_time, r.error,
                 *[r.custom_timers.get(n) for n in names])
                if r.custom_timers else (r.epoch, r.elapsed, r.scriptrun_time, r.error)
                for r in results
            ]
        else:
            rows = [(r.epoch, r.elapsed, r.scriptrun_time, r.error) for r in results]
        return header + self._encode(rows)

    @staticmethod
    def _encode(rows: list[tuple[Any, ...]]) -> bytes:
        """
        Rows without an error text go through the fast
        :func:`_encode_csv_rows`; the others through the csv module, which
        quotes texts as CSV requires. Order is kept.
        """
        if not any([row[3] for row in rows]):
            return _encode_csv_rows(rows)
        out: list[bytes] = []
        plain: list[tuple[Any, ...]] = []
        for row in rows:
            if row[3]:
                out.append(_encode_csv_rows(plain))
                plain = []
                text = io.StringIO()
                csv.writer(text).writerow(["" if cell is None else cell for cell in row])
                out.append(text.getvalue().encode("utf-8", "backslashreplace"))
            else:
                plain.append(row)
        out.append(_encode_csv_rows(plain))
        return b"".join(out)

    def finish(self, path: Path) -> None:
        """
        After the last write (in the writer thread): if a timer appeared
        after the header was written, write the file again with every
        column, short rows padded.
        """
        if self.header_names is None or len(self.names) <= self.header_names:
            return
        full = len(CSV_COLUMNS) + len(self.names)
        temporary = path.with_name(path.name + ".tmp")
        with open(path, newline="", encoding="utf-8") as old, open(
            temporary, "w", newline="", encoding="utf-8"
        ) as new:
            reader = csv.reader(old)
            writer = csv.writer(new)
            next(reader, None)
            writer.writerow(CSV_COLUMNS + tuple(self.names))
            writer.writerows(row + [""] * (full - len(row)) for row in reader)
        os.replace(temporary, path)


class _JSONLFormat:
    def __init__(self, frames: bool) -> None:
        self._frames = frames

    def encode(self, results: list[Any]) -> bytes:
        if self._frames:
            return b"\n".join(results) + b"\n" if results else b""
        return _encode_jsonl(results)

    def finish(self, path: Path) -> None:
        pass


class ResultsFile:
    """
    Writes a run's results to ``path`` (see the module's doc).

    :param run_in_thread: runs a function in a worker thread and returns a
        Deferred of its result (default: the reactor's thread pool); tests
        pass a synchronous one.
    :param frames: (``.jsonl`` only) :attr:`write` takes result frames as
        sent to the HQ (JSON bytes), not results.
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
        if frames and kind != "jsonl":
            raise ValueError(f"{path}: only a .jsonl file takes result frames")
        self.path = path
        self._run_in_thread = run_in_thread or threads.deferToThread
        self._buffer: list[Any] = []
        #: appends one result, or frame (the hot path: a bound list.append)
        self.write: Callable[[Any], None] = self._buffer.append
        self._format: _CSVFormat | _JSONLFormat = (
            _CSVFormat() if kind == "csv" else _JSONLFormat(frames)
        )
        self._file = _File(path)
        self._chain: Deferred[object] = defer.succeed(None)
        self._failed = False
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

    def _hand_over(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        batch = buffer[:]
        del buffer[:]
        self.rows += len(batch)
        if self._failed:
            return
        try:
            data = self._format.encode(batch)
        except Exception as e:
            self._write_failed(e)
            return
        self.waiting += len(batch)
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
            self.waiting -= len(batch)

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
        self._failed = True
        error = getattr(failure, "value", failure)
        self.log.error(
            "cannot write the results to {path}: {problem}",
            path=str(self.path),
            problem=getattr(error, "strerror", None) or str(error),
        )

    def close(self) -> Deferred[None]:
        """
        Write what is left and close the file; fires when it is done (also
        when writing failed: that is logged).
        """
        if self._closed is None:
            if self._loop.running:
                self._loop.stop()
            self._hand_over()
            if isinstance(self._format, _CSVFormat) and self._format.header_names is None:
                self._queue(self._file.write, self._format.encode([]))  # the header alone
            self._queue(self._finish)
            done: Deferred[None] = Deferred()

            def finished(_: object) -> None:
                done.callback(None)

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
