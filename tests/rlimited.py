"""
Run a command under a lower descriptor limit, for the exhaustion tests:
``python tests/rlimited.py --nofile N -- command...`` sets
``RLIMIT_NOFILE`` (``ulimit -n``) to ``N``, then the command replaces this
process (its pid is the command's).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys


def main(argv: list[str]) -> None:
    """Set the limit and exec the command."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--nofile", type=int, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
