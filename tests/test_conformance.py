"""
The conformance kit (:mod:`octtwisted.conformance`): run through its
trial mixin against our own turret (every check passes), and against a
small pyzmq turret (``tests/scripts/mini_turret.py``) that is correct by
default and broken on purpose one flaw at a time: each flaw fails
exactly the checks it should. A turret that hangs or dies at start ends
the kit within its bound, and every process the kit started is ended.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet.defer import DeferredList
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from octtwisted.conformance import (
    CHECKS,
    QUICK,
    Bounds,
    ConformanceMixin,
    Report,
    TurretLauncher,
    command_launcher,
    run_conformance,
)
from tests.helpers import SCRIPTS, TWISTD

MINI_TURRET = SCRIPTS / "mini_turret.py"
DOCS_TABLES = Path(__file__).resolve().parent.parent / "docs" / "conformance"


def documented_outcomes(turret: str) -> dict[str, str]:
    """
    Check name -> outcome, as ``docs/conformance/<turret>.inc`` shows them.
    """
    rows = [line.strip() for line in (DOCS_TABLES / f"{turret}.inc").read_text().splitlines()]
    outcomes = {}
    for i, row in enumerate(rows):
        if row.startswith("* - ``"):
            outcomes[row[len("* - ``"):-2]] = rows[i + 2][len("- "):]
    return outcomes


def reference_turret_command() -> str:
    """
    The command ``make conformance`` runs oct-turrets 0.2.8 with, with
    its program's full path (it is installed beside this Python).
    """
    spec = importlib.util.spec_from_file_location("regenerate", DOCS_TABLES / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    command: str = module.TURRETS["oct-turrets"]
    return command.replace("oct-turrets-start", str(Path(sys.executable).parent / "oct-turrets-start"))


class OurTurretConformance(ConformanceMixin, TestCase):
    """
    Every check of the kit, against ``twistd -n oct-turret``.
    """

    recommended_must_pass = True

    def start_turret(self, config: Path, uuid: str) -> subprocess.Popen[bytes]:
        with open(config.parent / "turret.log", "ab") as log:
            return subprocess.Popen(
                [TWISTD, "-n", "--pidfile=", "--logfile=-", "oct-turret", "-c", str(config), "--uuid", uuid],
                cwd=str(config.parent), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )


class _Recording:
    """
    A launcher of the mini turret with some flaws, that keeps every
    process it started (to check that the kit ended them all).
    """

    def __init__(self, *flaws: str) -> None:
        self.flaws = flaws
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, config: Path, uuid: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, str(MINI_TURRET), str(config), uuid]
        for flaw in self.flaws:
            argv += ["--break", flaw]
        with open(config.parent / "turret.log", "ab") as log:
            process = subprocess.Popen(argv, cwd=str(config.parent), stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def launcher(self) -> TurretLauncher:
        return TurretLauncher(start=self.start, passes_uuid=True, description=" ".join(self.flaws) or "correct")


class BrokenTurretTests(TestCase):
    """
    The kit against the mini turret, several cases at once (each in a
    thread: the kit is blocking code with its own bounds).
    """

    timeout = 180

    async def run_cases(self, cases: dict[tuple[str, ...], set[str]], bounds: Bounds = QUICK) -> dict[tuple[str, ...], tuple[Report, float]]:
        """
        Run the kit against the mini turret with each tuple of flaws, in
        parallel, and check that each fails exactly the given checks and
        that no process it started is left running.
        """
        recorders = {flaws: _Recording(*flaws) for flaws in cases}
        workdirs = {flaws: Path(self.mktemp()).absolute() for flaws in cases}  # here, not in the threads

        def one(flaws: tuple[str, ...]) -> tuple[Report, float]:
            workdir = workdirs[flaws]
            workdir.mkdir(parents=True)
            began = time.monotonic()
            report = run_conformance(recorders[flaws].launcher(), workdir, bounds=bounds)
            return report, time.monotonic() - began

        outcomes = await DeferredList([deferToThread(one, flaws) for flaws in cases], fireOnOneErrback=True, consumeErrors=True)
        reports = {flaws: value for flaws, (_, value) in zip(cases, outcomes)}
        wrong = []
        for flaws, expected in cases.items():
            report, _ = reports[flaws]
            if report.failed_names() != expected:
                wrong.append(f"{flaws or 'correct'}: failed {sorted(report.failed_names())}, expected {sorted(expected)}\n  "
                             + "\n  ".join(report.lines()))
            for process in recorders[flaws].processes:
                if process.poll() is None:
                    process.kill()
                    wrong.append(f"{flaws}: the kit left process {process.pid} running")
        self.assertEqual(wrong, [], "\n".join(wrong))
        return reports

    async def test_correct_turret_passes(self) -> None:
        """
        A turret that is not ours but meets the protocol passes every
        check: the kit depends on no trait of our turret.
        """
        reports = await self.run_cases({(): set()})
        report, _ = reports[()]
        self.assertTrue(report.ok)
        self.assertEqual(report.summary(), f"{len(CHECKS)} passed, 0 failed, 0 skipped")

    async def test_status_flaws(self) -> None:
        """
        A seventh status key fails only ``status-keys``; result frames with
        an unescaped ``status`` fail only ``no-status-in-results``; answering
        every status_request fails only the recommended ``status-storm``,
        so that turret still conforms (exit 0).
        """
        reports = await self.run_cases({
            ("seventh-key",): {"status-keys"},
            ("status-in-results",): {"no-status-in-results"},
            ("storm",): {"status-storm"},
        })
        self.assertFalse(reports[("seventh-key",)][0].ok)
        self.assertTrue(reports[("storm",)][0].ok)

    async def test_result_and_order_flaws(self) -> None:
        """
        Results without turret_name fail ``result-keys`` and
        ``result-turret-name``; a turret that drops orders with a topic
        fails the two addressed checks; one that starts every cannon at
        once fails ``rampup-spread``; one that says Killed but goes on
        fails only ``kill-exits``.
        """
        await self.run_cases({
            ("no-turret-name",): {"result-keys", "result-turret-name"},
            ("ignore-addressed",): {"status-request-addressed", "addressed-start"},
            ("no-rampup",): {"rampup-spread"},
            ("never-exit-on-kill",): {"kill-exits"},
        })

    async def test_hung_or_dead_at_start(self) -> None:
        """
        A turret that hangs at start (and ignores SIGTERM) or dies at start
        fails ``announces-ready``, the rest is skipped as not reached, and
        the kit ends within its start bound plus its SIGTERM grace (and
        SIGKILLs the hung one); for the dead one it does not wait out the
        start bound.
        """
        bounds = Bounds(start=6.0, grace=1.0)
        reports = await self.run_cases({
            ("hang-at-start",): {"announces-ready"},
            ("die-at-start",): {"announces-ready"},
        }, bounds)
        hung, hung_seconds = reports[("hang-at-start",)]
        dead, dead_seconds = reports[("die-at-start",)]
        self.assertLess(hung_seconds, 6.0 + 1.0 + 5.0 + 3.0)
        self.assertLess(dead_seconds, 6.0)  # it did not wait out the start bound
        self.assertIn("no status 'ready' within 6s", hung.outcome_of("announces-ready").detail)
        self.assertIn("exited with status 3", dead.outcome_of("announces-ready").detail)
        for report in (hung, dead):
            self.assertEqual(report.count("SKIP"), len(CHECKS) - 1)


class CommandLineTests(TestCase):
    """
    ``python -m octtwisted.conformance``: its lines, exit status and JSON.
    """

    timeout = 120

    async def kit(self, *args: str) -> tuple[str, int]:
        """
        Run the kit; its standard output (the check lines and the summary)
        and exit status. Its standard error says the command it runs.
        """
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-m", "octtwisted.conformance", *args], env=None,
        )
        if code != 2:
            self.assertIn("oct-turret-conformance: ", err.decode())
            return out.decode(), code
        return (out + err).decode(), code

    async def test_conforming_turret(self) -> None:
        """
        One line per check (PASS/FAIL/SKIP, name, detail), then
        ``N passed, N failed, N skipped``; exit 0; ``--json`` holds every
        check with its outcome. The command has no ``{uuid}``: the kit
        learns the turret's own uuid from its status (the addressed checks
        pass with it).
        """
        json_path = Path(self.mktemp()).absolute()
        output, code = await self.kit(
            "--quick", "--json", str(json_path),
            "--turret-cmd", f"{sys.executable} {MINI_TURRET} {{config}} mini-turret-own-id",
        )
        self.assertEqual(code, 0, output)
        lines = output.strip().splitlines()
        self.assertEqual(lines[-1], f"{len(CHECKS)} passed, 0 failed, 0 skipped")
        check_lines = lines[-1 - len(CHECKS):-1]
        self.assertEqual([line.split()[1] for line in check_lines], [c.name for c in CHECKS])
        self.assertTrue(all(line.startswith("PASS ") for line in check_lines), output)
        data: dict[str, Any] = json.loads(json_path.read_text())
        self.assertTrue(data["ok"])
        self.assertEqual([c["name"] for c in data["checks"]], [c.name for c in CHECKS])
        self.assertEqual({c["outcome"] for c in data["checks"]}, {"PASS"})

    async def test_dead_turret_and_bad_usage(self) -> None:
        """
        A turret that dies at once gives exit 1 and the reason in the
        detail; a command without ``{config}`` is a usage error (exit 2).
        """
        output, code = await self.kit(
            "--quick", "--turret-cmd", f"{sys.executable} {MINI_TURRET} {{config}} some-uuid --break die-at-start",
        )
        self.assertEqual(code, 1, output)
        self.assertIn("FAIL announces-ready the turret exited with status 3", output)
        self.assertEqual(output.strip().splitlines()[-1], f"0 passed, 1 failed, {len(CHECKS) - 1} skipped")
        output, code = await self.kit("--turret-cmd", "true")
        self.assertEqual(code, 2, output)
        self.assertIn("{config}", output)

    def test_console_script_installed(self) -> None:
        """
        ``oct-turret-conformance`` is a console script of the package.
        """
        self.assertTrue((Path(sys.executable).parent / "oct-turret-conformance").exists())


class ConformanceDocsTests(TestCase):
    """
    ``docs/conformance.rst`` shows what the kit says, and it is true.
    """

    timeout = 120

    async def test_reference_turret_table_is_true(self) -> None:
        """
        A run of the kit against oct-turrets 0.2.8, with the command the
        page shows, fails exactly the checks the page shows as FAIL (the
        kit finds real flaws in a turret that is not ours).
        """
        workdir = Path(self.mktemp()).absolute()
        workdir.mkdir(parents=True)
        report: Report = await deferToThread(
            run_conformance, command_launcher(reference_turret_command()), workdir, bounds=QUICK,
        )
        documented = {name for name, outcome in documented_outcomes("oct-turrets").items() if outcome == "FAIL"}
        self.assertIn("result-turret-name", documented)
        self.assertEqual(report.failed_names(), documented, "\n".join(report.lines()))
        self.assertFalse(report.ok)

    def test_checks_table_is_current(self) -> None:
        """
        The checks table the page includes is the one the kit makes from
        its checks now (``make conformance`` rewrites it), and both
        turrets' tables list every check.
        """
        from octtwisted.conformance.checks import checks_rst_table

        self.assertEqual((DOCS_TABLES / "checks.inc").read_text(), checks_rst_table())
        names = [check.name for check in CHECKS]
        for turret in ("oct-twisted", "oct-turrets"):
            self.assertEqual(list(documented_outcomes(turret)), names, turret)
        self.assertEqual(set(documented_outcomes("oct-twisted").values()), {"PASS"})
