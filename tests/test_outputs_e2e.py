"""
Reports, results files, thresholds and the live line, end to end: the real
``twistd oct-turret`` process, standalone and against the fake HQ.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from octtwisted.testing import FakeHQ
from tests import browser
from tests.helpers import TurretProcess, write_config

THRESHOLDS = {
    "scriptrun_time": ["p95 < 5"],
    "errors": ["rate < 0.01"],  # one in ten fails: this one fails
    "login": ["max < 1"],
}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class StandaloneTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        self.folder = Path(self.mktemp()).absolute()

    def run_turret(self, *args: str, use_pty: bool = False, script: str = "report_mix.py",
                   **keys: Any) -> TurretProcess:
        keys = {"hq_address": None, "hq_publisher": None, "hq_rc": None, "pacing": 0.01, **keys}
        config = write_config(self.folder, script=script, **keys)
        turret = TurretProcess(
            ["-c", str(config), "--standalone", "--duration", "2", *args],
            cwd=self.folder,
            use_pty=use_pty,
        )
        self.addCleanup(turret.cleanup)
        return turret

    async def test_report_results_thresholds(self) -> None:
        """
        A run with --report, --results (CSV) and a failing threshold exits
        99; the results file has one row per transaction of the summary,
        with the custom timer's column; the summary JSON and table give
        each threshold's verdict and value; the report is written within
        2 s of the run's end, names the script, escapes the error text, and
        its last lines say where the files are.
        """
        turret = self.run_turret(
            "--report", "report.html", "--results", "results.csv",
            "--summary-json", "summary.json", thresholds=THRESHOLDS,
        )
        self.assertEqual(await turret.wait_exit(), 99, turret.output)
        out = turret.output
        self.assertNotIn("Traceback", out)
        summary = json.loads((self.folder / "summary.json").read_text())
        rows = csv_rows(self.folder / "results.csv")
        self.assertGreater(summary["transactions"], 50)
        self.assertEqual(len(rows), summary["transactions"])
        self.assertEqual(sum(1 for r in rows if r["error"]), summary["errors"])
        self.assertEqual({r["login"] for r in rows}, {"0.002"})
        verdicts = [(t["metric"], t["expression"], t["passed"]) for t in summary["thresholds"]]
        self.assertEqual(verdicts, [("scriptrun_time", "p95 < 5", True),
                                    ("errors", "rate < 0.01", False),
                                    ("login", "max < 1", True)])
        self.assertLess(abs(summary["thresholds"][1]["value"] - 0.1), 0.02)
        self.assertIn("Thresholds (3, 1 failed)", out)
        self.assertRegex(out, r"FAIL\s+errors\s+rate < 0.01")
        self.assertIn("thresholds failed: errors: rate < 0.01", out)
        seconds = float(re.search(r"report written to .* in ([\d.]+)s", out)[1])
        self.assertLess(seconds, 2.0)
        page = (self.folder / "report.html").read_text()
        self.assertIn("report_mix.py", page)
        self.assertNotIn('<script>alert("x")', page)
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", page)
        tail = [line for line in out.splitlines() if line.startswith(("Report:", "Results:"))]
        self.assertEqual(tail, [f"Results: {self.folder / 'results.csv'}",
                                f"Report: {self.folder / 'report.html'}"])
        self.assertNotIn("\x1b[2K", out, "a live line without a terminal")

    async def test_open_model_report_counts_dropped_starts(self) -> None:
        """
        An open-model run (100 starts/s of 0.5 s transactions on 5 cannons,
        2 s) drops most starts; its report has the starts and start lag
        charts, whose data count the summary's planned, started and
        dropped starts exactly (dropped > 0), shows the arrival rate in its
        settings, and, in headless Chromium when there is one, draws every
        chart with a non-zero size and no request.
        """
        turret = self.run_turret("--report", "report.html", "--summary-json", "summary.json",
                                 script="slow.py", cannons=5, arrival_rate=100, pacing=0)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        starts = json.loads((self.folder / "summary.json").read_text())["starts"]
        page = (self.folder / "report.html").read_text()
        for caption in ("Starts per second: planned, started, dropped",
                        "Start lag: p50, p99, max (ms)", "Arrival rate</td><td>100 transactions/s"):
            self.assertIn(caption, page)
        found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
        assert found is not None
        charted = json.loads(found[1])["starts"]
        self.assertGreater(starts["dropped"], 50)
        self.assertEqual(sum(charted["dropped"]), starts["dropped"])
        self.assertEqual(sum(charted["planned"]), starts["planned"])
        self.assertEqual(sum(charted["started"]), starts["started"])
        self.assertEqual(len(charted["lag"]), 3)
        if browser.chromium() is None:
            return
        shown = await browser.open_page(self.folder / "report.html", self.folder / "browser")
        assert shown.probe is not None
        self.assertEqual(len(shown.probe["charts"]), 6)  # 4 for the run, 2 for the starts
        for chart in shown.probe["charts"]:
            self.assertEqual(chart["rendered"], "1")
            self.assertGreater(chart["width"] * chart["height"], 0)
        self.assertEqual(browser.page_requests(shown.requests), [])

    async def test_jsonl_and_passing_thresholds(self) -> None:
        """
        With passing thresholds the run exits 0; a .jsonl results file has
        one JSON line per transaction of the summary.
        """
        turret = self.run_turret(
            "--results", "results.jsonl", "--summary-json", "summary.json",
            thresholds={"errors": ["rate < 0.5"], "transactions": ["count > 10"]},
        )
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        summary = json.loads((self.folder / "summary.json").read_text())
        lines = (self.folder / "results.jsonl").read_text().splitlines()
        self.assertEqual(len(lines), summary["transactions"])
        self.assertEqual(json.loads(lines[0])["custom_timers"], {"login": 0.002})
        self.assertEqual([t["passed"] for t in summary["thresholds"]], [True, True])

    async def test_bad_threshold_is_a_config_error(self) -> None:
        """
        A bad threshold expression stops the turret at start: one line,
        exit status 2, no traceback.
        """
        turret = self.run_turret(thresholds={"scriptrun_time": ["p95 << 1"]})
        self.assertEqual(await turret.wait_exit(), 2)
        lines = [line for line in turret.output.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, turret.output)
        self.assertIn("key 'thresholds'", lines[0])
        self.assertIn("'p95 << 1'", lines[0])

    async def test_bad_output_paths(self) -> None:
        """
        --results with another extension, or --report into a missing
        folder, is one line and exit status 2.
        """
        for args, words in ((["--results", "r.txt"], ".csv or .jsonl"),
                            (["--report", "nowhere/r.html"], "does not exist")):
            turret = self.run_turret(*args)
            self.assertEqual(await turret.wait_exit(), 2)
            lines = [line for line in turret.output.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, turret.output)
            self.assertIn(words, lines[0])

    async def test_live_line_on_a_terminal(self) -> None:
        """
        In a terminal the run shows a live status line (cleared and
        rewritten in place) in place of the progress log lines.
        """
        turret = self.run_turret(use_pty=True, progress_interval=0.5)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        out = turret.output
        self.assertRegex(out, r"\x1b\[2K\d+\.\d/2 s  [\d,.]+ tx/s  p95 [\d.]+ ms  errors \d+")
        self.assertNotIn("progress:", out)

    async def test_progress_lines_without_a_terminal(self) -> None:
        """
        Without a terminal the progress log lines stay, and no status line
        is drawn.
        """
        turret = self.run_turret(progress_interval=0.5)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        self.assertIn("progress:", turret.output)
        self.assertNotIn("\x1b[2K", turret.output)


class HQModeTests(TestCase):
    timeout = 90

    async def test_one_report_and_results_file_per_run(self) -> None:
        """
        Obeying an HQ, each run writes its own report and results file
        (named with the run's start and number, so none overwrites
        another); each file's rows are its run's transactions, and they add
        up to every result the turret made.
        """
        hq = FakeHQ()
        hq.start()
        self.addCleanup(hq.stop)
        folder = Path(self.mktemp()).absolute()
        # Transactions that end after a wait, unpaced: at each stop, the
        # run ends in the turn of its last result.
        config = write_config(folder, script="deferred_sleep.py", **hq.turret_config())
        turret = TurretProcess(["-c", str(config), "--report", "run.html", "--results", "run.csv"],
                               cwd=folder)
        self.addCleanup(turret.cleanup)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        for run in range(2):
            mark = len(hq.statuses)
            hq.publish("start", "open fire")
            await hq.wait_for_status("Running", turret.uuid, after=mark)
            await hq.wait_for_results(len(hq.results) + 20)
            mark = len(hq.statuses)
            hq.publish("stop", "enough")
            await hq.wait_for_status("ready", turret.uuid, after=mark)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        reports = sorted(folder.glob("run-*.html"))
        results = sorted(folder.glob("run-*.csv"))
        self.assertEqual(len(reports), 2, turret.output)
        self.assertEqual(len(results), 2)
        for path in reports + results:
            self.assertRegex(path.name, r"^run-\d{8}T\d{6}Z-[12]\.(html|csv)$")
        made = int(re.search(r"turret killed: (\d+) results", turret.output)[1])
        self.assertEqual(sum(len(csv_rows(p)) for p in results), made)
        # Each run's file holds that run's transactions, its last included.
        counts = [int(n.replace(",", "")) for n in re.findall(r"Transactions +([\d,]+)\n", turret.output)]
        self.assertEqual([len(csv_rows(p)) for p in results], counts)
        self.assertIn("Mode</td><td>HQ", reports[0].read_text())

    async def test_jsonl_is_a_copy_of_what_was_sent(self) -> None:
        """
        Obeying an HQ, a .jsonl results file holds exactly the results the
        HQ received, in order, one per line.
        """
        hq = FakeHQ()
        hq.start()
        self.addCleanup(hq.stop)
        folder = Path(self.mktemp()).absolute()
        config = write_config(folder, script="report_mix.py", **hq.turret_config(), pacing=0.01)
        turret = TurretProcess(["-c", str(config), "--results", "run.jsonl"], cwd=folder)
        self.addCleanup(turret.cleanup)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(50)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        made = int(re.search(r"turret killed: (\d+) results", turret.output)[1])
        await hq.wait_for_results(made)
        [path] = folder.glob("run-*.jsonl")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        self.assertEqual(len(lines), made)
        self.assertEqual(lines, hq.results[:made])


class DemoReportTests(TestCase):
    timeout = 120

    async def test_real_report_in_chromium(self) -> None:
        """
        The report of a real run renders in headless Chromium: every chart
        drawn with a non-zero size, no request of the page's own.
        """
        if browser.chromium() is None:
            self.skipTest(browser.MISSING)
        folder = Path(self.mktemp()).absolute()
        config = write_config(folder, script="report_mix.py", hq_address=None,
                              hq_publisher=None, hq_rc=None, pacing=0.01)
        turret = TurretProcess(["-c", str(config), "--standalone", "--duration", "2",
                                "--report", "report.html"], cwd=folder)
        self.addCleanup(turret.cleanup)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        page = await browser.open_page(folder / "report.html", folder / "browser")
        assert page.probe is not None
        self.assertEqual(len(page.probe["charts"]), 5)  # 4 for the run (CPU too), 1 for login
        for chart in page.probe["charts"]:
            self.assertEqual(chart["rendered"], "1")
            self.assertGreater(chart["width"] * chart["height"], 0)
        self.assertEqual(browser.page_requests(page.requests), [])
        self.assertEqual(page.probe["resources"], [])


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU seconds, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TurretCPUTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        self.folder = Path(self.mktemp()).absolute()

    def run_turret(self, script: str, *args: str, **keys: Any) -> TurretProcess:
        keys = {"hq_address": None, "hq_publisher": None, "hq_rc": None, "pacing": 0, **keys}
        config = write_config(self.folder, script=script, **keys)
        turret = TurretProcess(
            ["-c", str(config), "--standalone", "--report", "report.html",
             "--summary-json", "summary.json", *args],
            cwd=self.folder,
        )
        self.addCleanup(turret.cleanup)
        return turret

    async def test_saturated_turret_flagged(self) -> None:
        """
        A script that keeps the reactor busy makes the turret's process use
        its core: the summary (JSON and table) gives the CPU peak (at least
        the mean share the test itself reads from /proc over 8 s), the
        report charts it, and the log says the turret is saturated, once,
        exactly when the report's samples stayed above 90 % for 10 s (on a
        machine busy with other work the process may get less of its core:
        then no warning, and the test checks that).
        """
        turret = self.run_turret("burns_cpu.py", "--duration", "13", cannons=2)
        await turret.wait_output("open fire")
        first = cpu_seconds(turret.transport.pid), time.monotonic()
        await deferLater(reactor, 8.0, lambda: None)
        last = cpu_seconds(turret.transport.pid), time.monotonic()
        mean = (last[0] - first[0]) / (last[1] - first[1])
        self.assertEqual(await turret.wait_exit(timeout=40), 0, turret.output)
        out = turret.output
        summary = json.loads((self.folder / "summary.json").read_text())
        # The busiest second used at least the mean share the test saw over
        # 8 s (read from /proc itself), whatever else the machine does.
        self.assertGreaterEqual(summary["cpu_peak"], mean * 0.9, (summary["cpu_peak"], mean))
        self.assertGreater(mean, 0.0)
        self.assertRegex(out, r"Turret CPU peak\s+\d+% of a core")
        found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                          (self.folder / "report.html").read_text())
        assert found is not None
        busiest = json.loads(found[1])["cpu"]["busiest"]
        self.assertGreaterEqual(len(busiest), 12)
        self.assertLess(abs(max(busiest) - summary["cpu_peak"] * 100), 0.1)
        run = longest = 0
        for share in busiest:
            run = run + 1 if share > 90.0 else 0
            longest = max(longest, run)
        warnings = out.count("the turret is saturated")
        self.assertEqual(warnings, 1 if longest >= 10 else 0, (busiest, out[-3000:]))

    async def test_idle_turret_with_processes(self) -> None:
        """
        With --processes 2, the CPU of the main process and of both workers
        is read: the summary has a peak, no saturation is reported for a
        turret that waits on its transactions, and the report has the CPU
        chart.
        """
        turret = self.run_turret("slow.py", "--duration", "3", "--processes", "2", cannons=4)
        self.assertEqual(await turret.wait_exit(timeout=40), 0, turret.output)
        summary = json.loads((self.folder / "summary.json").read_text())
        self.assertIsNotNone(summary["cpu_peak"])
        self.assertLess(summary["cpu_peak"], 0.9)
        self.assertNotIn("the turret is saturated", turret.output)
        self.assertIn('data-chart="cpu"', (self.folder / "report.html").read_text())

