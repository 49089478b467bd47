"""
A conformance kit for OCT turrets: it drives any turret process over the
wire, as the real OCT HQ 0.4.12 does, and says which parts of the
protocol it meets (see ``docs/conformance.rst`` and ``docs/protocol.rst``).

- the command line: ``oct-turret-conformance --turret-cmd 'COMMAND'``
  (or ``python -m octtwisted.conformance``), see :mod:`.cli`;
- from Python: :func:`run_conformance` with a :class:`TurretLauncher`
  (:func:`command_launcher` makes one from a command line);
- in a trial test suite: :class:`ConformanceMixin`.

The kit's HQ side is plain pyzmq in blocking threads: it needs no reactor.
"""

from octtwisted.conformance.bounds import QUICK, Bounds
from octtwisted.conformance.checks import (
    CHECKS,
    FAIL,
    PASS,
    SKIP,
    Check,
    CheckResult,
    Report,
)
from octtwisted.conformance.cli import main
from octtwisted.conformance.launcher import TurretLauncher, command_launcher
from octtwisted.conformance.mixin import ConformanceMixin
from octtwisted.conformance.runner import run_conformance
from octtwisted.conformance.scripts import FAILING_MESSAGE, FAILS, SUCCEEDS

__all__ = [
    "CHECKS",
    "Check",
    "CheckResult",
    "Report",
    "PASS",
    "FAIL",
    "SKIP",
    "Bounds",
    "QUICK",
    "TurretLauncher",
    "command_launcher",
    "run_conformance",
    "ConformanceMixin",
    "SUCCEEDS",
    "FAILS",
    "FAILING_MESSAGE",
    "main",
]
