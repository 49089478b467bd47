"""
The compiled hot path of per-request statistics
(``octtwisted/_stats/requestcounts.c``), checked against the Python it stands
in for: ``RequestTable.record_response`` must count exactly what
``RequestTable.record`` counts, and the table without the compiled module
(its pure-Python twin) must give the same figures.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from octtwisted._stats import requests
from octtwisted._stats.requests import MAX_NAMES, OTHER_NAMES, RequestTable

#: Runs :func:`figures_of` on a table made without the compiled module.
WITHOUT_COMPILED = """
import json, sys
sys.modules["octtwisted._stats.requestcounts"] = None  # as if it were not built
from octtwisted._stats import requests
from tests.test_request_counts import figures_of, play
assert not requests.COMPILED
table = requests.RequestTable()
play(table, table.record_response)
print(json.dumps(figures_of(table)))
"""


def calls(seed: int = 7, count: int = 5_000) -> list[tuple[Any, ...]]:
    """
    ``count`` responses as ``record_response`` gets them: a few names,
    one used with two methods, every kind of status (none, 2xx, 3xx, 4xx,
    5xx), sizes known or not, times from below a microsecond to above the
    hour the table keeps, a negative one (a clock that went back) and
    times on both sides of the staging threshold.
    """
    rng = random.Random(seed)
    names = ["GET /", "GET /item", "POST /cart", "same name"]
    found: list[tuple[Any, ...]] = []
    for _ in range(count):
        name = rng.choice(names)
        method = "POST" if name == "POST /cart" else "GET"
        if name == "same name":
            method = rng.choice(["GET", "PUT"])
        status = rng.choice([0, 200, 200, 200, 204, 302, 404, 500, 503])
        size = rng.choice([-1, 0, 3, 1_000, 123_456])
        seconds = rng.choice([
            rng.uniform(0.0, 0.0005), rng.uniform(0.0005, 0.002), rng.uniform(0.002, 5.0),
            rng.choice([0.0, 4e-7, 5e-7, 0.000511, 0.0005115, 0.000512, 3600.0, 4000.0, -0.25]),
        ])
        found.append((name, method, seconds, status, size))
    return found


def play(table: RequestTable, record: Any, seed: int = 7) -> None:
    """Record :func:`calls` through ``record``."""
    for call in calls(seed):
        record(*call)


def figures_of(table: RequestTable) -> dict[str, Any]:
    """Everything a table tells: its rows, failures and part."""
    return {
        "rows": [row.to_dict() for row in table.rows(10.0)],
        "failures": [row.to_dict() for row in table.failure_rows()],
        "part": table.take_part(),
    }


class CompiledTests(SynchronousTestCase):
    def test_same_figures_as_record(self) -> None:
        """
        Five thousand responses of every kind counted through
        ``record_response`` and through ``record`` give the same rows,
        failures (statuses >= 400), and part for ``--processes``, to the
        last staged value and byte; each call answers the name counted.
        """
        fast, plain = RequestTable(), RequestTable()
        for call in calls():
            self.assertEqual(fast.record_response(*call), plain.record(*call))
        self.assertEqual(figures_of(fast), figures_of(plain))

    def test_cardinality_guard(self) -> None:
        """
        Past the guard, ``record_response`` counts a new name under
        ``(other names)`` and answers that name, as ``record`` does.
        """
        fast, plain = RequestTable(), RequestTable()
        for i in range(MAX_NAMES + 5):
            for table in (fast, plain):
                table.record(f"n{i}", "GET", 0.01, 200)
        self.assertEqual(fast.record_response("new", "GET", 0.2, 200, 3), OTHER_NAMES)
        self.assertEqual(fast.record_response("n3", "GET", 0.2, 200, 3), "n3")
        plain.record("new", "GET", 0.2, 200, 3)
        plain.record("n3", "GET", 0.2, 200, 3)
        self.assertEqual(figures_of(fast), figures_of(plain))

    def test_what_it_hands_over(self) -> None:
        """
        What the compiled path does not count itself reaches ``record``:
        keywords, an int for seconds, a time that is not a number (which
        ``record`` refuses, as the hook expects), and then the table
        counts as ``record`` would.
        """
        fast, plain = RequestTable(), RequestTable()
        for table in (fast, plain):
            table.record("GET /", "GET", 0.01, 200)
        for args, kwargs in [
            (("GET /", "GET", 1, 200, 3), {}),
            (("GET /", "GET", 0.5), {"status": 200, "size": 7}),
        ]:
            fast.record_response(*args, **kwargs)
            plain.record(*args, **kwargs)
        self.assertRaises(ValueError, fast.record_response, "GET /", "GET", float("nan"), 200, 3)
        self.assertRaises(ValueError, plain.record, "GET /", "GET", float("nan"), 200, 3)
        self.assertEqual(figures_of(fast), figures_of(plain))

    def test_built_here(self) -> None:
        """
        Where a C compiler is, the project's install builds the compiled
        module (a missing build would silently make every request
        slower).
        """
        if shutil.which("cc") is None and shutil.which("gcc") is None:
            raise self.skipTest("no C compiler here: the pure-Python twin is used")
        self.assertTrue(requests.COMPILED, "octtwisted/_stats/requestcounts.c was not built")

    def test_python_twin_same_figures(self) -> None:
        """
        Without the compiled module (a machine with no C compiler), the
        table's pure-Python twin gives the same figures for the same
        responses.
        """
        done = subprocess.run(
            [sys.executable, "-c", WITHOUT_COMPILED], capture_output=True, text=True, timeout=120,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        table = RequestTable()
        play(table, table.record_response)
        self.assertEqual(json.loads(done.stdout), json.loads(json.dumps(figures_of(table))))
