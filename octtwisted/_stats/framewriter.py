"""
The results file's own process, obeying an HQ:
``python -m octtwisted._stats.framewriter csv|jsonl PATH``.

It reads result frames (the JSON bytes sent to the HQ, end to end, with
nothing between them) from its standard input until it closes, and writes
them to ``PATH``: for ``jsonl`` one frame per line, for ``csv`` the CSV
of :class:`~octtwisted._stats.csvrows.CSVFormat`, byte for byte what the
turret would write from the results themselves. So a turret obeying an
HQ pays a ``bytearray.extend`` per result and a pipe write per batch for
its ``--results`` file, and this process does the rest on another core.
It exits 0 once the file is complete, or 1 with one line on standard
error saying what went wrong.

Frames are cut apart where ``}{"turret_name":`` appears: every frame is
a JSON object whose first key is ``turret_name``, and a bare quote cannot
occur inside a JSON string (it is escaped there), so that sequence is
found only between two frames.

Most results are a success with no custom timer, whose frame is

    {"turret_name":"NAME","epoch":E,"elapsed":T,"scriptrun_time":S,"error":"","custom_timers":{}}

and whose CSV row is ``E,T,S,""`` (the numbers as orjson writes them,
in both). A batch of frames becomes such rows by four ``bytes.replace``
calls over the whole batch (about 1 us a row; parsing the JSON costs 2 to
3 us). That is safe for the same reason: the replaced pieces hold bare
quotes, so they can only be the frame's own keys; and a line where
anything is left of the keys (``":``) is a result with an error text,
custom timers or another name, which goes through the JSON parser and
:class:`CSVFormat` instead, in its place.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import orjson

from octtwisted._stats.csvrows import CSVFormat

#: Bytes read from the pipe at a time, at most.
READ_SIZE = 1 << 20

#: Between two frames, and what it becomes: a line each.
FRAMES_JOINED = b'}{"turret_name":'
FRAMES_SPLIT = b'}\n{"turret_name":'

#: The end of the frame of a success without custom timers, and what it
#: becomes in CSV.
_SIMPLE_END = b',"error":"","custom_timers":{}}'
_SIMPLE_END_CSV = b',""'

#: Left of the frame's keys after the replacements: the line is not simple.
_KEY_LEFT = b'":'


class _Row(NamedTuple):
    epoch: float
    elapsed: float
    scriptrun_time: float
    error: str
    custom_timers: dict[str, Any]


def _rows(lines: list[bytes]) -> list[_Row]:
    """
    The results of frames: one ``orjson.loads`` of them all as a JSON
    array.
    """
    try:
        objects = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        # A lone surrogate, which orjson refuses: the standard parser.
        objects = [json.loads(line) for line in lines]
    return [
        _Row(d["epoch"], d["elapsed"], d["scriptrun_time"], d["error"], d["custom_timers"])
        for d in objects
    ]


def _prefix(line: bytes) -> bytes:
    """
    ``{"turret_name":"NAME","epoch":`` of a frame, or ``b""`` if the frame
    does not begin so.
    """
    end = line.find(b',"epoch":')
    if not line.startswith(b'{"turret_name":"') or end < 0 or line[end - 1 : end] != b'"':
        return b""
    return line[: end + len(b',"epoch":')]


class FramesToCSV:
    """
    Turns batches of frames into CSV lines (see the module's doc).
    """

    def __init__(self) -> None:
        self.csv = CSVFormat()
        self._prefix: bytes | None = None

    def convert(self, frames: bytes) -> bytes:
        """
        The CSV lines (and the header, the first time) of ``frames``, one
        per line, without a newline at the end.
        """
        if self._prefix is None:
            self._prefix = _prefix(frames.split(b"\n", 1)[0])
        fast = frames
        if self._prefix:
            fast = fast.replace(self._prefix, b"")
        fast = (
            fast.replace(b',"elapsed":', b",")
            .replace(b',"scriptrun_time":', b",")
            .replace(_SIMPLE_END, _SIMPLE_END_CSV)
        )
        # Without the prefix every line keeps its "turret_name": key, so
        # every line is parsed.
        if _KEY_LEFT not in fast:
            return self.csv.learn(()) + fast + b"\n"
        originals = frames.split(b"\n")
        lines = fast.split(b"\n")
        hard_rows = _rows([originals[i] for i, line in enumerate(lines) if _KEY_LEFT in line])
        # Every timer of the batch is learnt before any of its rows is made.
        header = self.csv.learn(hard_rows)
        parsed = iter(hard_rows)
        pieces: list[bytes] = []
        simple: list[bytes] = []
        hard: list[_Row] = []
        for line in lines:
            if _KEY_LEFT not in line:
                if hard:
                    pieces.append(self.csv.rows(hard))
                    hard = []
                simple.append(line)
            else:
                if simple:
                    pieces.append(b"\n".join(simple) + b"\n")
                    simple = []
                hard.append(next(parsed))
        if hard:
            pieces.append(self.csv.rows(hard))
        if simple:
            pieces.append(b"\n".join(simple) + b"\n")
        return header + b"".join(pieces)


class _JSONLines:
    def convert(self, frames: bytes) -> bytes:
        return frames + b"\n"

    def end(self) -> bytes:
        return b""

    def finish(self, path: Path) -> None:
        pass


class _CSVLines:
    def __init__(self) -> None:
        self.frames = FramesToCSV()

    def convert(self, frames: bytes) -> bytes:
        return self.frames.convert(frames)

    def end(self) -> bytes:
        # A run without results still gets its header.
        return self.frames.csv.learn(()) if self.frames.csv.header_names is None else b""

    def finish(self, path: Path) -> None:
        self.frames.csv.finish(path)


class Chunks(Protocol):
    """
    A binary stream read a chunk at a time (a buffered reader).
    """

    def read1(self, size: int, /) -> bytes: ...


def write_file(kind: str, source: Chunks, path: Path) -> int:
    """
    Write the frames read from the binary stream ``source`` to ``path``
    as ``kind`` (``csv`` or ``jsonl``); return how many rows were written.
    """
    lines: _JSONLines | _CSVLines = _CSVLines() if kind == "csv" else _JSONLines()
    written = 0
    rest = b""
    with open(path, "wb") as out:

        def put(frames: bytes) -> int:
            whole = frames.replace(FRAMES_JOINED, FRAMES_SPLIT)
            out.write(lines.convert(whole))
            return whole.count(b"\n") + 1

        while True:
            chunk = source.read1(READ_SIZE)
            if not chunk:
                break
            data = rest + chunk if rest else chunk
            cut = data.rfind(FRAMES_JOINED)
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 1 :]
            written += put(data[: cut + 1])
        if rest.strip():
            written += put(rest)
        out.write(lines.end())
    lines.finish(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("csv", "jsonl"):
        print("usage: python -m octtwisted._stats.framewriter csv|jsonl PATH", file=sys.stderr)
        return 2
    try:
        with open(sys.stdin.fileno(), "rb", closefd=False) as source:
            write_file(argv[1], source, Path(argv[2]))
    except OSError as e:
        print(e.strerror or str(e), file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as e:
        print(f"a result frame the results writer cannot read: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
