"""
The log namespaces of the turret, in one place.

Users filter the turret's log by these names (``docs/`` shows them), so
they stay the same when a class moves between modules: every logger of the
turret is made here with a namespace from this list.
"""

from __future__ import annotations

from twisted.logger import Logger

TURRET = "octtwisted.turret.TurretService"
LIFECYCLE = "octtwisted.lifecycle.Lifecycle"
CANNON = "octtwisted.cannon.Cannon"
HQ_LINK = "octtwisted.hqlink.HQLink"
PROGRESS = "octtwisted.progress.ProgressReporter"
STANDALONE = "octtwisted.standalone.StandaloneRun"
WATCHDOG = "octtwisted.watchdog.ReactorWatchdog"
PACKAGE = "octtwisted.tap.PackageCleanup"
RESULTS = "octtwisted.results.ResultsFile"
REPORT = "octtwisted.report.RunOutputs"
PROCESSES = "octtwisted.processes.Fleet"
WORKER = "octtwisted.processes.Worker"
METRICS = "octtwisted.metrics.MetricsService"

#: Every namespace above (pinned by a test against the docs).
ALL = (
    TURRET, LIFECYCLE, CANNON, HQ_LINK, PROGRESS, STANDALONE, WATCHDOG, PACKAGE, RESULTS, REPORT,
    PROCESSES, WORKER, METRICS,
)


class _NamedLogger(Logger):
    """
    A Logger that keeps its namespace when it is a class attribute
    (Twisted's own ``Logger.__get__`` renames it after the class and its
    module, which would change the names users filter by whenever a class
    moves).
    """

    def __get__(self, instance: object, owner: type | None = None) -> "_NamedLogger":
        if owner is None:
            owner = type(instance)
        source = owner if instance is None else instance
        return self.__class__(self.namespace, source, observer=self.observer)


def logger(namespace: str) -> Logger:
    """
    A logger for one of the namespaces above, to be a class attribute
    (``log = logs.logger(logs.TURRET)``); events carry the instance as
    their source.
    """
    if namespace not in ALL:
        raise ValueError(f"unknown log namespace {namespace!r}")
    return _NamedLogger(namespace=namespace)
