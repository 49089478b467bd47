"""
Scenario ``hq-intake`` of ``make bench``: how many results per second the
real OCT HQ stores (``oct-hq``: oct 0.4.12 on SQLite, from the ``hq``
extra), against how many one of our turrets sends.

Each run is the real thing, one turret: ``oct-hq new-project``, a project
of one turret of ours, ``oct-hq pack-turrets``, the turret started from its
package (``--tar``), then ``oct-hq run --no-results`` (no HTML report: only
the intake is measured) for ``run_time`` seconds. The turret sends at a set
rate (the open model, ``arrival_rate``, transactions of 1 ms), or as fast
as it can (empty transactions, 100 cannons).

Figures of a run:

``sent_rate``     results/s the turret sent: the transactions of its run
                  summary over the run's duration
``run_rate``      results/s the HQ stored during the run: its own count of
                  messages read (its last ``messages received`` line before
                  ``stop``; each goes to SQLite in batches of 150) over
                  ``run_time``
``drain_s``       seconds the HQ then takes to store what had reached it
                  (its ``took N`` line: from ``stop`` to its last row)
``drain_rate``    results/s it stores meanwhile (the turret idle): the HQ's
                  own pace, with nothing else to do
``stored``        rows in ``results.sqlite``; ``not_stored`` = sent - stored
                  (results that came after the HQ stopped reading)
``overall_rate``  stored / (run_time + drain_s)
``hq_rss_mib``    the HQ's peak memory (what waits to be read is held there)

Variants: ``hq-intake/1000``, ``/5000``, ``/10000``, ``/20000`` (results/s
offered), and ``hq-intake/max`` (as fast as the turret goes; a shorter run,
since its drain lasts about ten times as long).

With ``HQ_INTAKE_DATABASE=URL`` (a peewee database URL, e.g.
``postgresql://postgres@127.0.0.1:5432/octhq``, its driver installed in
``.venv``: ``.venv/bin/pip install psycopg2-binary``), each variant also
runs with that database as the project's ``results_database``
(``hq-intake/10000@postgresql``...); its tables are dropped before each
run.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import harness
from harness import SCENARIOS, TWISTD

OCT_HQ = Path(sys.executable).parent / "oct-hq"

#: Another results database to measure, besides SQLite (see above).
DATABASE = os.environ.get("HQ_INTAKE_DATABASE")

_PROGRESS = re.compile(rb"turrets: \d+, elapsed: (\d+)  messages received: (\d+)")
_TOOK = re.compile(rb"\ntook ([\d.]+)")
_TRANSACTIONS = re.compile(r"Transactions\s+([\d,]+)")
_DURATION = re.compile(r"Duration\s+([\d.]+) s")


def _oct_hq(args: list[str], cwd: Path) -> None:
    done = subprocess.run([str(OCT_HQ), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"oct-hq {' '.join(args)} failed: {(done.stdout + done.stderr)[-500:]}")


def _project(run_dir: Path, run_time: float, turret: dict[str, Any], script: str, database: str | None) -> Path:
    _oct_hq(["new-project", "P"], run_dir)
    project = run_dir / "P"
    (project / "test_scripts" / script).write_text((SCENARIOS / script).read_text())
    publish, rc, external = (harness.free_port() for _ in range(3))
    config = json.loads((project / "config.json").read_text())
    config.update(run_time=run_time, results_ts_interval=1, min_turrets=1, publish_port=publish,
                  rc_port=rc, external_publisher=external,
                  turrets=[{"name": "intake", "rampup": 0, "script": f"test_scripts/{script}", **turret}])
    if database:
        config["results_database"] = {"db_uri": database, "params": {}}
    (project / "config.json").write_text(json.dumps(config, indent=1))
    _oct_hq(["pack-turrets", "P"], run_dir)
    return project


def _wait_for(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} from the turret: {harness.tail(path)}")
        time.sleep(0.1)


def _rows(database: str, drop: bool = False) -> int:
    """Rows of oct's result table in ``database`` (a URL); ``drop``: drop oct's tables instead."""
    from playhouse.db_url import connect

    db = connect(database)
    try:
        if drop:
            db.execute_sql("DROP TABLE IF EXISTS result, turret")
            return 0
        return int(db.execute_sql("SELECT count(*) FROM result").fetchone()[0])
    finally:
        db.close()


def intake(run_time: float, turret: dict[str, Any], script: str, offered: float | None,
           database: str | None = None) -> Callable[[Path], dict[str, Any]]:
    def run(run_dir: Path) -> dict[str, Any]:
        run_dir.mkdir(parents=True, exist_ok=True)
        if database:
            _rows(database, drop=True)
        project = _project(run_dir, run_time, turret, script, database)
        turret_log = run_dir / "turret.log"
        shooter = harness.spawn(
            [str(TWISTD), "-n", "--pidfile=", "--logfile=-", "oct-turret", "--tar", str(project / "intake.tar.gz")],
            log_path=turret_log, cwd=str(run_dir),
        )
        _wait_for(turret_log, "ready: ", shooter, 30)
        hq_log = run_dir / "hq.log"
        hq = harness.spawn([str(OCT_HQ), "run", "P", "--no-results"], log_path=hq_log, cwd=str(run_dir))
        sampler = harness.RSSSampler(hq.pid)
        sampler.start()
        began = time.monotonic()
        try:
            hq.wait(timeout=run_time * 40 + 120)
        except subprocess.TimeoutExpired:
            harness.end_process(hq)
            return {"ok": False, "why": f"the HQ did not end in {run_time * 40 + 120:g}s"}
        finally:
            sampler.stop()
        wall = time.monotonic() - began
        _wait_for(turret_log, "stopping -> ready", shooter, 30)
        harness.end_process(shooter)
        harness.forget_finished()
        output = hq_log.read_bytes()
        if hq.returncode != 0:
            return {"ok": False, "why": f"oct-hq run exited {hq.returncode}: {harness.tail(hq_log, 5)}"}
        before_stop = output.split(b"Processing all remaining messages", 1)[0]
        progress = _PROGRESS.findall(before_stop)
        took = _TOOK.search(output)
        summary = turret_log.read_text(errors="replace")
        sent = _TRANSACTIONS.findall(summary)
        duration = _DURATION.findall(summary)
        if not (progress and took and sent and duration):
            return {"ok": False, "why": f"missing figures in the logs: {harness.tail(hq_log, 3)}"}
        if database:
            stored = _rows(database)
        else:
            (path,) = (project / "results").glob("*/results.sqlite")
            with sqlite3.connect(path) as reader:
                stored = reader.execute("SELECT count(*) FROM result").fetchone()[0]
        received = int(progress[-1][1])
        sent_count = int(sent[-1].replace(",", ""))
        drain = float(took.group(1))
        result: dict[str, Any] = {
            "ok": True,
            "offered": offered,
            "sent": sent_count,
            "sent_rate": sent_count / float(duration[-1]),
            "run_rate": received / run_time,
            "drain_s": drain,
            "drain_rate": (stored - received) / drain if drain > 0 else None,
            "stored": stored,
            "not_stored": sent_count - stored,
            "overall_rate": stored / (run_time + drain),
            "hq_wall_s": wall,
            "hq_rss_mib": max((kib for _, kib in sampler.samples), default=0) / 1024,
        }
        for leftover in (project / "results").glob("*/results.sqlite"):
            leftover.unlink()  # up to a few hundred MB a run
        return result

    return run


def _suffix(database: str | None) -> str:
    return "" if database is None else "@" + database.split(":", 1)[0]


def variants(Variant: Any, quick: bool) -> list[Any]:
    paced = 4 if quick else 10
    out = []
    for database in (None, DATABASE) if DATABASE else (None,):
        suffix = _suffix(database)
        for rate in (1000, 5000, 10_000, 20_000):
            turret = {"cannons": max(20, rate // 100), "arrival_rate": rate, "bench_wait": 0.001}
            out.append(Variant(f"hq-intake/{rate}{suffix}", "hq-intake", "ours", "oct-hq",
                               intake(paced, turret, "ours_open_wait.py", rate, database)))
        out.append(Variant(f"hq-intake/max{suffix}", "hq-intake", "ours", "oct-hq",
                           intake(3 if quick else 5, {"cannons": 100}, "ours_empty.py", None, database), reps=1))
    return out


DETAIL_METRICS = [("sent_rate", 0), ("run_rate", 0), ("drain_s", 1), ("drain_rate", 0), ("stored", 0), ("not_stored", 0),
                  ("overall_rate", 0), ("hq_rss_mib", 0)]


def summary_rows(get: Callable[[str], Any], add: Callable[..., None]) -> None:
    for database in (None, DATABASE) if DATABASE else (None,):
        for key in ("1000", "5000", "10000", "20000", "max"):
            _summary_rows(get, add, key, database)


def _summary_rows(get: Callable[[str], Any], add: Callable[..., None], key: str, database: str | None) -> None:
    v = get(f"hq-intake/{key}{_suffix(database)}")
    if v is None:
        return
    offered = "as fast as one turret goes" if key == "max" else f"{int(key):,} results/s offered"
    store = "SQLite" if database is None else _suffix(database)[1:]
    add(f"Real HQ intake ({store}), {offered}", "results/s sent by the turret", v, None, "sent_rate")
    add("", "results/s stored by the HQ during the run", v, None, "run_rate")
    add("", "drain after stop (s)", v, None, "drain_s", 1)
    add("", "results/s stored while draining", v, None, "drain_rate")
    add("", "results not stored (sent after the HQ stopped reading)", v, None, "not_stored")
    add("", "HQ peak memory (MiB)", v, None, "hq_rss_mib")
