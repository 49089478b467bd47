"""
:class:`DescriptorBudget`: how many connections the fast clients of this
process may have open at once, so that running out of file descriptors
fails a cannon's request, never the turret.

Every open file, socket and pipe of a process takes one of its descriptors,
up to ``RLIMIT_NOFILE`` (``ulimit -n``). A connection of ``self.fast_http``
takes one for as long as it is open (or opening), and a turret with more
cannons than the limit allows would otherwise take them all: then ZeroMQ
could not reconnect to the HQ, nor the turret open a file. So the budget
keeps :data:`RESERVED` descriptors (fewer under a small limit) out of the
cannons' reach: a connection past the budget is not attempted, and its
request fails at once with ``too many open files``, as one refused by the
system does.

The budget counts this process's fast connections (the pools count them as
they open and forget them), plus the descriptors that were open when the
first connection was counted. Descriptors opened later by anything else (a
script's own files, treq's connections) are not counted: past the limit,
those fail with the system's own ``EMFILE``, which the fast client also
reports as ``too many open files``.

The first refusal of the process (the budget's or the system's) is logged,
once, with the limit to raise.
"""

from __future__ import annotations

import os
import resource
from typing import Callable

from octtwisted._core import logs

#: Descriptors kept out of the cannons' reach (a quarter of the limit when
#: that is smaller): for ZeroMQ's reconnections to the HQ, the results and
#: report files, the log.
RESERVED = 64

#: A soft limit at or above this is taken as no limit.
UNLIMITED = 1 << 24


def descriptor_limit() -> int:
    """The process's soft ``RLIMIT_NOFILE``; :data:`UNLIMITED` when none."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= UNLIMITED:
        return UNLIMITED
    return int(soft)


def open_descriptors() -> int:
    """How many descriptors the process has open now (0 if unknown)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 0


class DescriptorBudget:
    """
    The fast connections this process may have open at once (see the
    module docstring).

    :param limit: reads the descriptor limit.
    :param count_open: counts the descriptors open now.
    """

    log = logs.logger(logs.CANNON)

    def __init__(
        self,
        limit: Callable[[], int] = descriptor_limit,
        count_open: Callable[[], int] = open_descriptors,
    ) -> None:
        self._limit = limit
        self._count_open = count_open
        #: Fast connections open or opening now.
        self.open = 0
        #: The most that may be (None: not computed yet).
        self.ceiling: int | None = None
        self.limit = UNLIMITED
        self.reserved = 0
        #: Requests failed for want of a descriptor, budget's and system's.
        self.refused = 0
        self._told = False

    def take(self) -> bool:
        """
        Count a connection about to open; past the budget, count nothing
        and return False (the connection must not be attempted).
        """
        ceiling = self.ceiling
        if ceiling is None:
            ceiling = self._compute()
        if self.open >= ceiling:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        """A counted connection is closed (or was never opened)."""
        if self.open > 0:
            self.open -= 1

    def exhausted(self) -> str:
        """
        A request fails for want of a descriptor (the budget's refusal, or
        the system's ``EMFILE``): log the first one of the process, and
        return the error text.
        """
        self.refused += 1
        if self.ceiling is None:
            self._compute()
        if not self._told:
            self._told = True
            self.log.error(
                "out of file descriptors: the turret may open {limit} (ulimit -n, RLIMIT_NOFILE), "
                "{reserved} of them kept for the HQ link and files, and each fast_http connection "
                "takes one; requests past it fail with 'too many open files'. Raise the limit "
                "(ulimit -n before starting the turret, LimitNOFILE= in a systemd unit) or lower "
                "cannons (logged once)",
                limit=self.limit,
                reserved=self.reserved,
            )
        return self.text()

    def text(self) -> str:
        """The error text of a request refused for want of a descriptor."""
        if self.limit >= UNLIMITED:
            return "too many open files"
        return f"too many open files (ulimit -n {self.limit})"

    def _compute(self) -> int:
        limit = self.limit = self._limit()
        if limit >= UNLIMITED:
            self.ceiling = UNLIMITED
            return UNLIMITED
        self.reserved = min(RESERVED, limit // 4)
        already = max(0, self._count_open() - self.open)
        ceiling = self.ceiling = max(0, limit - self.reserved - already)
        return ceiling


#: The process's budget, shared by every fast client (the limit is the
#: process's).
DESCRIPTORS = DescriptorBudget()
