"""
``oct-turret-conformance`` (also ``python -m octtwisted.conformance``):
runs the kit against a turret command and prints one line per check.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from octtwisted.conformance.bounds import QUICK, Bounds
from octtwisted.conformance.checks import Report
from octtwisted.conformance.launcher import command_launcher
from octtwisted.conformance.runner import run_conformance

EPILOG = """\
COMMAND starts the turret. It must contain {config}, the path of the
config.json the kit writes (name, cannons, rampup, script, hq_address,
hq_publisher, hq_rc: ports of the kit's own HQ on 127.0.0.1), and may
contain {uuid}, the uuid the turret must use (without it, the kit learns
the uuid from the turret's first status). It runs in the config's folder,
in a session of its own; its output goes to turret.log there.

Example: oct-turret-conformance --turret-cmd 'twistd -n --pidfile= --logfile=- oct-turret -c {config} --uuid {uuid}'

Exit status: 0 iff every required check passed, 1 otherwise, 2 on bad usage.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="oct-turret-conformance",
        description="Check that an OCT turret speaks the protocol of the real OCT HQ (0.4.12).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--turret-cmd", required=True, metavar="COMMAND", help="the command that starts the turret")
    p.add_argument("--script", type=Path, help="the transaction script the turret runs (default: the kit's, for Python turrets)")
    p.add_argument("--failing-script", type=Path,
                   help="a script whose every transaction fails (default with the kit's scripts: the kit's)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--rst", type=Path, metavar="PATH", help="also write the results as a reStructuredText table to PATH")
    p.add_argument("--rst-title", default="Conformance", help="the table's title (with --rst)")
    p.add_argument("--quick", action="store_true", help="shorter bounds, for turrets known to be quick")
    p.add_argument("--serial", action="store_true", help="run the sessions one after the other, not in parallel")
    p.add_argument("--keep", type=Path, metavar="DIR", help="keep the sessions' files (configs, turret logs) in DIR")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        launcher = command_launcher(args.turret_cmd)
    except ValueError as e:
        parser().error(str(e))
    for path in (args.script, args.failing_script):
        if path is not None and not path.is_file():
            parser().error(f"no such file: {path}")
    bounds: Bounds = QUICK if args.quick else Bounds()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="conformance-", dir=args.keep))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="oct-turret-conformance-"))
    # stdout holds only the check lines and the summary.
    print(f"oct-turret-conformance: {args.turret_cmd}", file=sys.stderr, flush=True)
    try:
        report = run_conformance(
            launcher, workdir, script=args.script, failing_script=args.failing_script,
            bounds=bounds, parallel=not args.serial,
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    write(report, args)
    return 0 if report.ok else 1


def write(report: Report, args: argparse.Namespace) -> None:
    for line in report.lines():
        print(line)
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if args.rst:
        args.rst.write_text(report.rst_table(args.rst_title))
    sys.stdout.flush()
