"""
Scenario ``open`` of ``make bench``: the open workload model and load
stages (ours only: no peer has them; k6 and Gatling are not installed here).

Each variant runs our turret standalone (``--standalone --duration D
--summary-json``) with ``progress_interval: 1``, and reads the summary's
figures (transactions, planned, started, dropped starts, start lag) and the
per-second progress lines (achieved starts per second, active cannons).

Variants:

``open/5000``        5,000 tx/s, 10 ms transactions (deferLater), 200 cannons, 20 s
``open/200-10ms``    200 tx/s, 10 ms transactions, 100 cannons, 15 s
``open/200-200ms``   200 tx/s, 200 ms transactions, 100 cannons, 15 s
``open/too-few``     100 tx/s, 1 s transactions, 20 cannons, 15 s
``open/stages-closed`` stages 0 -> 1,000 cannons over 10 s -> 100 over 10 s (2 s waits)
``open/stages-open`` stages 100 -> 2,000 tx/s over 10 s (10 ms transactions, 400 cannons)
``open/5000-no-early`` as ``open/5000``, but each start waits for its own
                     planned time (no 0.5 ms early window): what epoll's
                     millisecond does to the start lag (a diagnostic)
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import harness
from harness import SCENARIOS, TWISTD

_PROGRESS_OPEN = re.compile(
    r"progress: (?P<tps>[\d.]+) tx/s \(target (?P<target>[\d.]+)/s\), (?P<active>\d+) in flight, "
    r"(?P<planned>\d+) planned, (?P<dropped>\d+) dropped"
)
_PROGRESS_CLOSED = re.compile(r"progress: (?P<active>\d+)/(?P<target>[\d.]+) cannons, (?P<tps>[\d.]+) tx/s")


def run_standalone(run_dir: Path, config: dict[str, Any], script: str, duration: float | None) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"name": f"bench-{run_dir.name}", "rampup": 0, "progress_interval": 1, **config, "script": script}
    (run_dir / script).write_text((SCENARIOS / script).read_text())
    (run_dir / "config.json").write_text(json.dumps(config, indent=1))
    summary_path = run_dir / "summary.json"
    argv = [str(TWISTD), "-n", "--pidfile=", "--logfile=-", "oct-turret", "-c", str(run_dir / "config.json"),
            "--standalone", "--summary-json", str(summary_path)]
    if duration is not None:
        argv += ["--duration", str(duration)]
    log_path = run_dir / "turret.log"
    started = time.monotonic()
    with open(log_path, "wb") as out:
        process = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=run_dir, timeout=(duration or 60) + 90)
    result: dict[str, Any] = {"ok": process.returncode == 0, "exit": process.returncode,
                              "wall_s": time.monotonic() - started}
    if not summary_path.exists():
        result.update(ok=False, why=f"no summary; exit {process.returncode}: {harness.tail(log_path)}")
        return result
    summary = json.loads(summary_path.read_text())
    result["summary"] = summary
    result["duration"] = summary["duration"]
    result["rate"] = summary["transactions_per_second"]  # closed model: as the summary says
    starts = summary.get("starts")
    if starts:
        result["planned"] = starts["planned"]
        result["started"] = starts["started"]
        result["dropped"] = starts["dropped"]
        result["conserved"] = starts["started"] + starts["dropped"] == starts["planned"]
        # Per second of the planned window (the run's duration also holds
        # the stop, which waits for the transactions in flight).
        window = duration if duration is not None else summary["duration"]
        result["start_rate"] = starts["started"] / window
        result["dropped_rate"] = starts["dropped"] / window
        result["rate"] = summary["transactions"] / window
        lag = starts.get("start_lag") or {}
        for key in ("p50", "p99", "max"):
            if lag.get(key) is not None:
                result[f"lag_{key}_ms"] = lag[key] * 1000
    text = log_path.read_text(errors="replace")
    result["seconds"] = [m.groupdict() for m in _PROGRESS_OPEN.finditer(text)] or [
        m.groupdict() for m in _PROGRESS_CLOSED.finditer(text)
    ]
    return result


def open_rate(rate: float, wait: float, cannons: int, duration: float, target: float,
              extra: dict[str, Any] | None = None) -> Callable[[Path], dict[str, Any]]:
    def run(run_dir: Path) -> dict[str, Any]:
        config = {"cannons": cannons, "arrival_rate": rate, "bench_wait": wait, **(extra or {})}
        result = run_standalone(run_dir, config, "ours_open_wait.py", duration)
        if "start_rate" in result:
            result["start_rate_pct"] = 100 * result["start_rate"] / target
            result["done_rate_pct"] = 100 * result["rate"] / target
        return result

    return run


def stages(config: dict[str, Any], expected: Callable[[float], float], model: str) -> Callable[[Path], dict[str, Any]]:
    """
    ``expected(t)``: for the open model, the starts planned in second
    ``(t - 1, t]``; for the closed model, the active cannons at ``t``.
    Only the seconds of the stages count (the run ends with the last one;
    a progress line of the stop that follows is not part of the curve).
    """
    end = sum(stage["duration"] for stage in config["stages"])

    def run(run_dir: Path) -> dict[str, Any]:
        result = run_standalone(run_dir, config, "ours_open_wait.py", None)
        rows = []
        worst = 0.0
        for second, line in enumerate(result.get("seconds", [])[: int(end)], 1):
            want = expected(second)
            if model == "open":
                got = float(line["planned"]) - float(line["dropped"])
            else:
                got = float(line["active"])
            error = (got - want) / want * 100 if want else 0.0
            if want >= 50:  # per-second noise of a handful is not a curve error
                worst = max(worst, abs(error))
            rows.append((second, want, got, error))
        result["per_second"] = rows
        result["worst_pct"] = worst
        return result

    return run


def _open_stage_expected(second: float) -> float:
    # 100 -> 2,000 per s over 10 s, then 2,000 held: starts in (t-1, t].
    def total(t: float) -> float:
        if t <= 10:
            return 100 * t + 95 * t * t
        return total(10) + 2000 * (t - 10)

    return total(second) - total(second - 1)


def _closed_stage_expected(second: float) -> float:
    if second <= 10:
        return 100 * second
    if second <= 20:
        return 1000 - 90 * (second - 10)
    return 100


def variants(Variant: Any, quick: bool) -> list[Any]:
    d = 5 if quick else 20
    short = 5 if quick else 15
    return [
        Variant("open/5000", "open", "ours", "ours, 5,000/s, 10 ms", open_rate(5000, 0.01, 200, d, 5000)),
        Variant("open/5000-no-early", "open", "ours", "ours, 5,000/s, no early window (diagnostic)",
                open_rate(5000, 0.01, 200, d, 5000, {"bench_early": 0.0}), reps=1),
        Variant("open/200-10ms", "open", "ours", "ours, 200/s, 10 ms", open_rate(200, 0.01, 100, short, 200)),
        Variant("open/200-200ms", "open", "ours", "ours, 200/s, 200 ms", open_rate(200, 0.2, 100, short, 200)),
        Variant("open/too-few", "open", "ours", "ours, 100/s, 1 s, 20 cannons", open_rate(100, 1.0, 20, short, 100)),
        Variant("open/stages-closed", "open", "ours", "ours, 0 -> 1,000 -> 100 cannons",
                stages({"cannons": 1000, "bench_wait": 2.0,
                        "stages": [{"duration": 10, "target": 1000}, {"duration": 10, "target": 100}]},
                       _closed_stage_expected, "closed"), reps=1),
        Variant("open/stages-open", "open", "ours", "ours, 100 -> 2,000/s",
                stages({"cannons": 400, "arrival_rate": 100, "bench_wait": 0.01,
                        "stages": [{"duration": 10, "target": 2000}]},
                       _open_stage_expected, "open"), reps=1),
    ]


DETAIL_METRICS = [("rate", 0), ("start_rate", 0), ("dropped_rate", 1), ("lag_p50_ms", 3), ("lag_p99_ms", 3),
                  ("lag_max_ms", 2), ("worst_pct", 2)]


def summary_rows(get: Callable[[str], Any], add: Callable[..., None]) -> None:
    within = lambda pct: (lambda o, r: None if o is None else abs(o - 100) <= pct)  # noqa: E731
    at_most = lambda x: (lambda o, r: None if o is None else o <= x)  # noqa: E731
    add("Open model: 5,000/s, 10 ms, 200 cannons", "started/s, % of 5,000", get("open/5000"), None, "start_rate_pct", 2, "%",
        target="within 1%", check=within(1))
    add("", "completed/s, % of 5,000", get("open/5000"), None, "done_rate_pct", 2, "%")
    add("", "start lag p99 (ms)", get("open/5000"), None, "lag_p99_ms", 3, target="<= 2 ms", check=at_most(2))
    add("", "dropped starts/s", get("open/5000"), None, "dropped_rate", 1, target="0", check=lambda o, r: None if o is None else o == 0)
    add("", "start lag p99 (ms), no early window", get("open/5000-no-early"), None, "lag_p99_ms", 3)
    add("", "start lag p50 (ms), no early window", get("open/5000-no-early"), None, "lag_p50_ms", 3)
    add("", "start lag p50 (ms)", get("open/5000"), None, "lag_p50_ms", 3)
    add("Open model: 200/s, 10 ms", "started/s, % of 200", get("open/200-10ms"), None, "start_rate_pct", 2, "%",
        target="within 1%", check=within(1))
    add("Open model: 200/s, 200 ms", "started/s, % of 200", get("open/200-200ms"), None, "start_rate_pct", 2, "%",
        target="within 1%", check=within(1))
    add("Open model: 100/s, 1 s, 20 cannons", "completed/s", get("open/too-few"), None, "rate", 1, target="about 20",
        check=lambda o, r: None if o is None else abs(o - 20) <= 1)
    add("", "dropped starts/s", get("open/too-few"), None, "dropped_rate", 1, target="about 80",
        check=lambda o, r: None if o is None else abs(o - 80) <= 2)
    add("", "started + dropped = planned", get("open/too-few"), None, "conserved", 0)
    add("Stages, closed: 0 -> 1,000 -> 100 cannons", "worst per-second error (%)", get("open/stages-closed"), None,
        "worst_pct", 2, target="<= 2%", check=at_most(2))
    add("Stages, open: 100 -> 2,000/s", "worst per-second error (%)", get("open/stages-open"), None,
        "worst_pct", 2, target="<= 2%", check=at_most(2))


def report_sections(variants_by_key: dict[str, Any]) -> list[str]:
    """The per-second tables of the stage runs, for the report."""
    lines: list[str] = []
    for key, what in (("open/stages-closed", "active cannons"), ("open/stages-open", "starts in the second")):
        v = variants_by_key.get(key)
        if v is None or not v.runs or not v.runs[-1].get("per_second"):
            continue
        lines += ["", f"### {v.label}: {what}, per second", "", "| second | target | achieved | error |", "|---|---|---|---|"]
        for second, want, got, error in v.runs[-1]["per_second"]:
            lines.append(f"| {second} | {want:,.0f} | {got:,.0f} | {error:+.2f}% |")
    return lines
