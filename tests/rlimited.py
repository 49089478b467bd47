"""
Run a command under resource limits, for the exhaustion tests:
``python tests/rlimited.py [--nofile N] [--nproc N --user NAME] -- command...``

``--nofile`` sets ``RLIMIT_NOFILE`` (``ulimit -n``). ``--nproc`` sets
``RLIMIT_NPROC`` (``ulimit -u``), which Linux does not enforce for root:
with ``--user`` the command runs as that user (it must start as root), so
that the limit holds. Then the command replaces this process.
"""

from __future__ import annotations

import argparse
import os
import pwd
import resource
import sys


def main(argv: list[str]) -> None:
    """Set the limits, drop to ``--user`` if given, and exec the command."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--nofile", type=int)
    parser.add_argument("--nproc", type=int)
    parser.add_argument("--user")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    if args.user is not None:
        user = pwd.getpwnam(args.user)
        os.setgroups([])
        os.setgid(user.pw_gid)
        if args.nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (args.nproc, args.nproc))
        os.setuid(user.pw_uid)
    elif args.nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (args.nproc, args.nproc))
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
