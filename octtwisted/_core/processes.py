"""
How many processes a turret fires from: ``--processes N|auto`` on the
command line, or the config key ``processes`` (the command line wins).

``auto`` is the number of CPUs this process may run on
(``os.sched_getaffinity``), which a container's or ``taskset``'s limit
narrows, unlike ``os.cpu_count``.
"""

from __future__ import annotations

import os
from typing import Literal, Union

#: The most processes a turret may use.
MAX_PROCESSES = 1024

#: A number of processes, or ``"auto"``.
Processes = Union[int, Literal["auto"]]

AUTO: Literal["auto"] = "auto"


class ProcessesError(ValueError):
    """A bad number of processes; ``str()`` is one line."""


def parse_processes(value: object) -> Processes:
    """
    A whole number from 1 to :data:`MAX_PROCESSES` (an int, or its text
    from the command line), or ``"auto"``.

    :raise ProcessesError: saying what is wrong with ``value``.
    """
    if value == AUTO:
        return AUTO
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value)
    if number is None or not 1 <= number <= MAX_PROCESSES:
        raise ProcessesError(
            f"must be a whole number of processes from 1 to {MAX_PROCESSES}, or "
            f"\"auto\" (the CPUs this process may use), got {value!r}"
        )
    return number


def cpus_available() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_processes(processes: Processes) -> int:
    """``auto`` as a number; a number as itself."""
    return cpus_available() if processes == AUTO else int(processes)
