"""
The bridges: each gives a library back one name that ``oct`` 0.4.12 calls
and that the library has since renamed or removed, spelled in terms of
the name it has now.

A bridge only adds what is missing: where the library still has the name
(an older release), it is left alone, so installing twice is harmless.
No bridge changes what a library does for code that does not use the old
name. ``BRIDGES`` lists them, each with the oct line that needs it;
``docs/hq.rst`` shows the same list.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Bridge:
    """
    One old name, where oct calls it, and how it is given back.

    :ivar library: the library that dropped the name (``peewee``, ``pandas``)
    :ivar old: the name as oct calls it
    :ivar new: what the library offers now, in its place
    :ivar needed_by: where oct calls it: (file, code), the code as it is
        written there
    :ivar missing: whether the installed library lacks the name
    :ivar add: gives the name back
    """

    library: str
    old: str
    new: str
    needed_by: tuple[tuple[str, str], ...]
    missing: Callable[[], bool]
    add: Callable[[], None]

    def install(self) -> bool:
        """
        Add the name if the library lacks it. :return: whether it was added.
        """
        if not self.missing():
            return False
        self.add()
        return True


# peewee 3 -----------------------------------------------------------------


def _peewee() -> Any:
    import peewee

    return peewee


def _threadlocals_missing() -> bool:
    return "threadlocals" not in inspect.signature(_peewee().Database.__init__).parameters


def _add_threadlocals() -> None:
    database = _peewee().Database
    init = database.__init__

    def __init__(self: Any, database: Any, *args: Any, threadlocals: bool | None = None, **kwargs: Any) -> None:
        # peewee 2's threadlocals=True (a connection per thread) is peewee
        # 3's thread_safe=True; an explicit thread_safe wins.
        if threadlocals is not None:
            kwargs.setdefault("thread_safe", bool(threadlocals))
        init(self, database, *args, **kwargs)

    database.__init__ = __init__


def _get_conn_missing() -> bool:
    return not hasattr(_peewee().Database, "get_conn")


def _add_get_conn() -> None:
    def get_conn(self: Any) -> Any:
        """peewee 2's name for ``connection()``: this thread's connection, opened if need be."""
        return self.connection()

    _peewee().Database.get_conn = get_conn


def _execution_context_missing() -> bool:
    return not hasattr(_peewee().Database, "execution_context")


@contextlib.contextmanager
def _execution_context(self: Any) -> Iterator[Any]:
    """
    peewee 2's ``execution_context()``: the block runs on an open
    connection, in a transaction (committed at the end, rolled back on an
    exception); a connection opened for the block is closed after it, one
    that was already open stays open.
    """
    opened = self.connect(reuse_if_open=True)
    try:
        with self.atomic():
            yield self
    finally:
        if opened:
            self.close()


def _add_execution_context() -> None:
    _peewee().Database.execution_context = _execution_context


# pandas 2 -----------------------------------------------------------------


def _pandas() -> Any:
    import pandas

    return pandas


def _iteritems_missing() -> bool:
    return not hasattr(_pandas().Series, "iteritems")


def _add_iteritems() -> None:
    series = _pandas().Series
    series.iteritems = series.items


def _time_grouper_missing() -> bool:
    return not hasattr(_pandas(), "TimeGrouper")


#: pandas 2.2 renamed the seconds alias ``S`` to ``s`` (``S`` warns, and is
#: gone in pandas 3).
_SECONDS = re.compile(r"(\d*)S")


def _modern_frequency(freq: Any) -> Any:
    if isinstance(freq, str):
        seconds = _SECONDS.fullmatch(freq)
        if seconds:
            return seconds.group(1) + "s"
    return freq


def _add_time_grouper() -> None:
    pandas = _pandas()

    def TimeGrouper(freq: Any = None, **kwargs: Any) -> Any:
        """pandas' old ``TimeGrouper(rule)``: ``Grouper(freq=rule)``."""
        return pandas.Grouper(freq=_modern_frequency(freq), **kwargs)

    pandas.TimeGrouper = TimeGrouper


BRIDGES: tuple[Bridge, ...] = (
    Bridge(
        "peewee",
        "Database(..., threadlocals=True)",
        "Database(..., thread_safe=True)",
        (
            ("oct/results/models.py", "db_config.update(check_same_thread=False, threadlocals=True)"),
            ("oct/results/models.py", "connect('sqlite:////tmp/results.sqlite', check_same_thread=False, threadlocals=True)"),
        ),
        _threadlocals_missing,
        _add_threadlocals,
    ),
    Bridge(
        "peewee",
        "Database.get_conn()",
        "Database.connection()",
        (
            ("oct/results/stats_handler.py", "db.get_conn()"),
            ("oct/results/report.py", "db.get_conn())"),
        ),
        _get_conn_missing,
        _add_get_conn,
    ),
    Bridge(
        "peewee",
        "Database.execution_context()",
        "Database.connect(reuse_if_open=True), then Database.atomic()",
        (
            ("oct/results/stats_handler.py", "with db.execution_context():"),
            ("oct/core/turrets_manager.py", "with db.execution_context():"),
        ),
        _execution_context_missing,
        _add_execution_context,
    ),
    Bridge(
        "pandas",
        "Series.iteritems()",
        "Series.items()",
        (("oct/results/report.py", "for index, value in s.iteritems():"),),
        _iteritems_missing,
        _add_iteritems,
    ),
    Bridge(
        "pandas",
        "pandas.TimeGrouper('10S')",
        "pandas.Grouper(freq='10s')",
        (("oct/results/report.py", "dataframe.groupby(pd.TimeGrouper('{}S'.format(self.interval)))"),),
        _time_grouper_missing,
        _add_time_grouper,
    ),
)


def install_all() -> list[Bridge]:
    """
    Install every bridge the installed libraries need (importing peewee
    and pandas). :return: the bridges that were added.

    :raises ImportError: peewee or pandas is not installed.
    """
    return [bridge for bridge in BRIDGES if bridge.install()]
