"""
One turret's load split over several processes (``--processes N``): each
process runs the same config and makes its :class:`LoadShare` of the load,
so that all of them together make exactly the load one process would.

The split rule, for a config of ``C`` cannons over ``N`` processes
(numbered ``K`` from 0):

- global cannon ``i`` (``0 <= i < C``) belongs to process ``i % N``: the
  cannons are spread as evenly as possible, processes ``0 .. r - 1``
  getting one more than the others, where ``r = C % N``;
- the open model's ``n``-th planned start (``n`` from 0, unbounded)
  belongs to the process that owns cannon ``n % C``: of every ``C``
  consecutive starts, each process gets as many as it owns cannons, so
  each gets exactly ``cannons_K / C`` of the starts. Rates and stage
  targets are thus split in proportion, as k6's execution segments do.

Each process keeps every time of the single-process schedule: its cannon
``i`` comes in when cannon ``i`` would in one process, its start ``n`` is
planned when start ``n`` would be. So the union of the processes' start
times is the single-process schedule, exactly. There are never more
shares than cannons, so a share always owns at least one cannon: with
more processes than cannons, ``C`` shares split the load (``N = C`` in
the rule, which names the same owners).
"""

from __future__ import annotations

import attrs


@attrs.frozen
class LoadShare:
    """
    The part of a turret's load that one of ``count`` processes makes.

    :ivar index: which process (``K``), from 0 to ``count - 1``.
    :ivar count: how many processes share the load (``N``), never more than
        ``total``, so that every share owns at least one cannon.
    :ivar total: the config's cannons (``C``), over all the processes.

    The methods answer in constant time: the schedules call them for
    each cannon they bring in and each start they plan.
    """

    index: int = attrs.field(validator=attrs.validators.ge(0))
    count: int = attrs.field(validator=attrs.validators.ge(1))
    total: int = attrs.field(validator=attrs.validators.ge(1))

    def __attrs_post_init__(self) -> None:
        if self.index >= self.count:
            raise ValueError(f"index must be < count ({self.count}), got {self.index}")
        if self.count > self.total:
            raise ValueError(f"count must be <= total ({self.total}), got {self.count}")

    @classmethod
    def whole(cls, cannons: int) -> LoadShare:
        """
        The share of a single process: all of the ``cannons`` and every
        start.
        """
        return cls(0, 1, cannons)

    @classmethod
    def split(cls, cannons: int, processes: int) -> tuple[LoadShare, ...]:
        """
        The shares of ``cannons`` cannons over ``processes`` processes, in
        the order of their index: ``min(processes, cannons)`` of them
        (a process would have nothing to do without a cannon).

        :raises ValueError: ``processes`` or ``cannons`` below 1.
        """
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        if cannons < 1:
            raise ValueError(f"cannons must be >= 1, got {cannons}")
        count = min(processes, cannons)
        return tuple(cls(index, count, cannons) for index in range(count))

    @property
    def cannons(self) -> int:
        """How many of the ``total`` cannons this share owns."""
        return (self.total - self.index + self.count - 1) // self.count

    def owns_cannon(self, i: int) -> bool:
        """Whether global cannon ``i`` is this share's."""
        return 0 <= i < self.total and i % self.count == self.index

    def owns_start(self, n: int) -> bool:
        """Whether the open model's start ``n`` (from 0) is this share's."""
        return n >= 0 and n % self.total % self.count == self.index

    def cannons_below(self, x: int) -> int:
        """
        How many of this share's cannons have a global index below ``x``
        (any integer: below 0 there are none, above ``total`` all).
        """
        below = min(x, self.total) - self.index
        if below <= 0:
            return 0
        return (below + self.count - 1) // self.count

    def cannon_index(self, j: int) -> int:
        """
        The global index of this share's ``j``-th cannon (``j`` from 0):
        ``index + j * count``.

        :raises IndexError: the share has no ``j``-th cannon.
        """
        if not 0 <= j < self.cannons:
            raise IndexError(f"share {self.index} of {self.count} has no cannon {j}")
        return self.index + j * self.count

    def next_start(self, n: int) -> int:
        """The first start number at or after ``n`` that is this share's."""
        if n < 0:
            n = 0
        count = self.count
        if count == 1:
            return n
        total, index = self.total, self.index
        block, rest = divmod(n, total)
        if rest <= index:
            return block * total + index
        owned = index + (rest - index + count - 1) // count * count
        if owned < total:
            return block * total + owned
        return (block + 1) * total + index
