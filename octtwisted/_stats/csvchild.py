"""
The CSV writer's own process: ``python -m octtwisted._stats.csvchild PATH``.

It reads result frames (the JSON bytes sent to the HQ, one per line) from
its standard input until it closes, and writes them to ``PATH`` as the
CSV of :class:`~octtwisted._stats.csvrows.CSVFormat`: so a turret obeying
an HQ pays a ``join`` and a pipe write per batch for its ``--results``
CSV file, and this process does the parsing and formatting on another
core. It exits 0 once the file is complete, or 1 with one line on
standard error saying what went wrong.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from octtwisted._stats.csvrows import CSVFormat

#: Bytes read from the pipe at a time, at most.
READ_SIZE = 1 << 20


class _Row(NamedTuple):
    epoch: float
    elapsed: float
    scriptrun_time: float
    error: str
    custom_timers: dict[str, Any]


def _rows(lines: list[bytes]) -> list[_Row]:
    rows = []
    for line in lines:
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError:
            d = json.loads(line)  # a lone surrogate, which orjson refuses
        rows.append(
            _Row(d["epoch"], d["elapsed"], d["scriptrun_time"], d["error"], d["custom_timers"])
        )
    return rows


def write_csv(source: Any, path: Path) -> int:
    """
    Write the frames read from the binary stream ``source`` to ``path``;
    return how many rows were written.
    """
    csv_format = CSVFormat()
    written = 0
    rest = b""
    with open(path, "wb") as out:
        while True:
            chunk = source.read1(READ_SIZE)
            if not chunk:
                break
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                lines = data[: cut - 1].split(b"\n")
                out.write(csv_format.encode(_rows(lines)))
                written += len(lines)
        if rest.strip():
            out.write(csv_format.encode(_rows([rest])))
            written += 1
        if csv_format.header_names is None:
            out.write(csv_format.encode([]))  # the header alone
    csv_format.finish(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m octtwisted._stats.csvchild PATH", file=sys.stderr)
        return 2
    try:
        write_csv(sys.stdin.buffer, Path(argv[1]))
    except OSError as e:
        print(e.strerror or str(e), file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as e:
        print(f"a result frame the CSV writer cannot read: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
