"""
``make conformance``: run the conformance kit against our turret and
against the reference turret oct-turrets 0.2.8, and write the tables that
``docs/conformance.rst`` includes (``docs/conformance/*.inc``): the
checks, and each turret's results.

Exit status: that of the run against our turret (the reference turret
is known not to pass).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from octtwisted.conformance import Bounds, command_launcher, run_conformance
from octtwisted.conformance.checks import checks_rst_table

HERE = Path(__file__).resolve().parent

#: The commands, exactly as given to ``--turret-cmd``.
TURRETS = {
    "oct-twisted": "twistd -n --pidfile= --logfile=- oct-turret -c {config} --uuid {uuid}",
    # oct-turrets 0.2.8 runs a turret package (its --config-file option
    # crashes: the code reads args.config): pack the kit's config and
    # script, then start it. It makes its own uuid.
    "oct-turrets": (
        "sh -c 'cd \"${0%/*}\" && tar czf turret.tar.gz config.json *.py"
        " && exec oct-turrets-start --tar turret.tar.gz' {config}"
    ),
}


def main() -> int:
    # twistd and oct-turrets-start are in the venv that runs this.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    (HERE / "checks.inc").write_text(checks_rst_table())
    codes = {}
    for name, command in TURRETS.items():
        with tempfile.TemporaryDirectory(prefix="conformance-") as workdir:
            report = run_conformance(command_launcher(command), Path(workdir), bounds=Bounds())
        print(f"== {name}: {command}")
        print("\n".join(report.lines()), flush=True)
        text = "\n".join([
            ".. code-block:: text",
            "",
            f"   --turret-cmd {command}",
            "",
            report.rst_table(f"{name}: {report.summary()}"),
        ])
        (HERE / f"{name}.inc").write_text(text)
        codes[name] = 0 if report.ok else 1
    return codes["oct-twisted"]


if __name__ == "__main__":
    sys.exit(main())
