"""
How the kit starts the turret under test: a :class:`TurretLauncher`
(any callable that starts the process), or :func:`command_launcher` to
make one from a shell-like command line.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Callable

import attrs

#: ``start_turret(config_path, uuid)``: starts the turret and returns its process.
Launcher = Callable[[Path, str], "subprocess.Popen[bytes]"]


@attrs.frozen
class TurretLauncher:
    """
    How the kit starts the turret under test.

    :ivar start: called with the config's path and a uuid; starts the
        turret (cwd: the config's folder) and returns its process.
    :ivar passes_uuid: whether the turret is given that uuid; if not, the
        kit learns the uuid from the turret's first status.
    :ivar description: how it is started, for the report.
    """

    start: Launcher
    passes_uuid: bool = True
    description: str = ""


def command_launcher(command: str) -> TurretLauncher:
    """
    A launcher for a shell-like command line with ``{config}`` (the path
    of the config the kit writes) and optionally ``{uuid}``. The command
    runs in the config's folder, in a session of its own, with ``TMPDIR``
    set to that folder; its output goes to ``turret.log`` there.
    """
    if "{config}" not in command:
        raise ValueError("the turret command must contain {config}")

    def start(config: Path, uuid: str) -> subprocess.Popen[bytes]:
        line = command.replace("{config}", shlex.quote(str(config))).replace("{uuid}", shlex.quote(uuid))
        argv = shlex.split(line)
        if argv and "/" in argv[0] and not os.path.isabs(argv[0]):
            argv[0] = os.path.abspath(argv[0])  # the command runs in the config's folder
        env = dict(os.environ, TMPDIR=str(config.parent), PYTHONUNBUFFERED="1")
        with open(config.parent / "turret.log", "ab") as log:
            return subprocess.Popen(
                argv, cwd=str(config.parent), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )

    return TurretLauncher(start=start, passes_uuid="{uuid}" in command, description=command)
