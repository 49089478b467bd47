"""
CSV lines of results, fast: the format of ``--results PATH.csv`` (see
:mod:`.results_file`), importable without Twisted (the CSV writer's own
process, :mod:`.framewriter`, uses it).

Text cells (error texts, timer names in the header) come from the script
and its target. One that begins with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return would be read as a formula by a spreadsheet (formula
injection): it is written with a ``'`` before it (:func:`inert_cell`, as
OWASP advises). Numbers are numbers, never changed: a negative timer
stays ``-0.5``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Sequence

import orjson

#: The first CSV columns; custom timers follow.
CSV_COLUMNS = ("epoch", "elapsed", "scriptrun_time", "error")


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


#: What a text cell a spreadsheet would take for a formula begins with.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(text: str) -> str:
    """
    A text cell as written: with a ``'`` before it if it begins like a
    formula (:data:`FORMULA_STARTS`), else as it is.
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def header_cells(names: Sequence[str]) -> tuple[str, ...]:
    """
    The header's cells: the fixed columns, then the timers' names (inert).
    """
    return CSV_COLUMNS + tuple(inert_cell(name) for name in names)


def _header(names: list[str]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerow(header_cells(names))
    return text.getvalue().encode("utf-8", "backslashreplace")



class CSVFormat:
    """
    Turns results into CSV lines, a batch at a time: on the reactor for a
    standalone run, in the results file's own process (:mod:`.framewriter`)
    obeying an HQ. A result is anything with the attributes ``epoch``,
    ``elapsed``, ``scriptrun_time``, ``error`` and ``custom_timers``.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.header_names: int | None = None

    def encode(self, results: Sequence[Any]) -> bytes:
        """
        The CSV lines of ``results`` (after the header, the first time).
        """
        return self.learn(results) + self.rows(results)

    def learn(self, results: Sequence[Any]) -> bytes:
        """
        Note the custom timers of ``results``; return the header the first
        time (its columns: the timers seen so far), else ``b""``.
        """
        names = self.names
        known = set(names)
        for result in results:
            if result.custom_timers:
                for name in result.custom_timers:
                    if name not in known:
                        known.add(name)
                        names.append(name)
        if self.header_names is None:
            self.header_names = len(names)
            return _header(names)
        return b""

    def rows(self, results: Sequence[Any]) -> bytes:
        """
        The CSV lines of ``results``, whose timers have been learnt.
        """
        names = self.names
        if names:
            rows = [
                (r.epoch, r.elapsed, r.scriptrun_time, r.error,
                 *[r.custom_timers.get(n) for n in names])
                if r.custom_timers else (r.epoch, r.elapsed, r.scriptrun_time, r.error)
                for r in results
            ]
        else:
            rows = [(r.epoch, r.elapsed, r.scriptrun_time, r.error) for r in results]
        return self._encode(rows)

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
                cells = ["" if cell is None else cell for cell in row]
                if isinstance(cells[3], str):
                    cells[3] = inert_cell(cells[3])
                csv.writer(text).writerow(cells)
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
            writer.writerow(header_cells(self.names))
            writer.writerows(row + [""] * (full - len(row)) for row in reader)
        os.replace(temporary, path)
