"""
The kit as a trial test case: mix :class:`ConformanceMixin` into a
``twisted.trial.unittest.TestCase`` and override :meth:`start_turret`.
Every check becomes one test method (``test_announces_ready``...); the
kit runs once per class and process, in a thread, and each test reports
its check.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable, Coroutine

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest

from octtwisted.conformance.bounds import Bounds
from octtwisted.conformance.checks import CHECKS, PASS, SKIP, Check, Report
from octtwisted.conformance.launcher import TurretLauncher
from octtwisted.conformance.runner import run_conformance

_REPORTS: dict[type, Report] = {}


class ConformanceMixin:
    """
    The conformance checks, as trial tests. Override :meth:`start_turret`.

    A required check that fails fails its test. A recommended one that
    fails is skipped with its detail, unless :attr:`recommended_must_pass`.
    """

    #: The kit's bounds (and the cannons and rampup it configures).
    conformance_bounds: Bounds = Bounds()
    #: The script the turret runs; None: the kit's default Python scripts.
    conformance_script: Path | None = None
    #: A script whose every transaction fails (see the kit's ``--failing-script``).
    conformance_failing_script: Path | None = None
    #: Fail (rather than skip) the tests of recommended checks that fail.
    recommended_must_pass: bool = False
    #: trial's per-test timeout; the kit bounds itself well within it.
    timeout = 300

    def start_turret(self, config: Path, uuid: str) -> subprocess.Popen[bytes]:
        """
        Start the turret with the config at ``config`` and the id ``uuid``,
        and return its process. Called in a thread (do not use the reactor),
        once per session of the kit (five times). Writing its output to
        ``turret.log`` beside the config puts its last line in the details;
        ``start_new_session=True`` lets the kit end the process's children
        along with it.
        """
        raise NotImplementedError("override start_turret(config, uuid) to start your turret")

    async def conformance_report(self) -> Report:
        """
        The kit's report for this class (run on first use).
        """
        cls = type(self)
        if cls not in _REPORTS:
            workdir = Path(self.mktemp()).absolute()  # type: ignore[attr-defined]
            workdir.mkdir(parents=True)
            launcher = TurretLauncher(start=self.start_turret, passes_uuid=True, description=cls.__qualname__)
            report: Report = await deferToThread(
                run_conformance, launcher, workdir,
                script=self.conformance_script, failing_script=self.conformance_failing_script,
                bounds=self.conformance_bounds,
            )
            _REPORTS[cls] = report
        return _REPORTS[cls]

    async def assert_check(self, check: Check) -> None:
        result = (await self.conformance_report()).outcome_of(check.name)
        if result.outcome == PASS:
            return
        if result.outcome == SKIP:
            raise SkipTest(result.detail)
        if check.required or self.recommended_must_pass:
            raise self.failureException(result.line())  # type: ignore[attr-defined]
        raise SkipTest(f"recommended check failed: {result.detail}")


def _test_for(check: Check) -> Callable[[ConformanceMixin], Coroutine[Any, Any, None]]:
    async def test(self: ConformanceMixin) -> None:
        await self.assert_check(check)

    test.__name__ = "test_" + check.name.replace("-", "_")
    test.__qualname__ = f"ConformanceMixin.{test.__name__}"
    test.__doc__ = ("" if check.required else "(recommended) ") + check.fact
    return test


for _check in CHECKS:
    setattr(ConformanceMixin, "test_" + _check.name.replace("-", "_"), _test_for(_check))
del _check
