"""
``--metrics``: the turret's figures for Prometheus (``docs/metrics.rst``).

:func:`parse_metrics_address` reads ``PORT`` or ``HOST:PORT`` into
:class:`MetricsSettings`; :class:`TurretCollector` is a
``prometheus_client`` collector that reads, at scrape time, what the
turret keeps anyway (the runs' :class:`~octtwisted._stats.scrape.TurretTally`,
the turret's state, the result sink's counts, the watchdog's lag): it adds
nothing to the hot path. :mod:`octtwisted._edge.metrics_web` serves it.
"""

from __future__ import annotations

import socket
from typing import Callable, Iterator, Protocol

import attrs
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from octtwisted._firing.lifecycle import State
from octtwisted._stats.scrape import BUCKETS, HistogramFigures, TurretTally
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import SCRIPTRUN_TIME, RunStats

#: The address a bare ``--metrics PORT`` binds.
LOCAL_HOST = "127.0.0.1"

#: The turret's states as the metrics show them: every state of a stop
#: (and of a kill or shutdown under way) is ``stopping``.
STATE_NAMES = ("ready", "running", "stopping")

#: The status classes every request name shows, 0 until it has one: the
#: series do not change as a name's first 5xx or error comes, so a scrape
#: needs no new template (``octtwisted._edge.metrics_web``) for it, and a
#: ``rate()`` over them has no gap. A class seen beyond these (``1xx``,
#: ``6xx``...) joins them for its name.
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")
_USUAL = frozenset(STATUS_CLASSES)

_SHOWN_STATE = {
    State.READY: "ready",
    State.RUNNING: "running",
    State.STOPPING: "stopping",
    State.RESTARTING: "stopping",
    State.KILLING: "stopping",
    State.SHUTTING_DOWN: "stopping",
}

_LE = tuple(f"{bound:g}" for bound in BUCKETS) + ("+Inf",)


class MetricsAddressError(ValueError):
    """A ``--metrics`` value that is not ``PORT`` or ``HOST:PORT``."""


@attrs.frozen
class MetricsSettings:
    """
    Where the metrics are served.

    :ivar host: the address bound (``127.0.0.1`` for a bare port).
    :ivar port: the TCP port.
    """

    host: str
    port: int

    @property
    def local(self) -> bool:
        """Bound to the loopback interface only."""
        return self.host in ("127.0.0.1", "localhost", "::1")


def parse_metrics_address(value: object) -> MetricsSettings:
    """
    ``PORT`` (an int or a string: binds 127.0.0.1) or ``HOST:PORT``
    (``[::1]:PORT`` for IPv6).

    :raises MetricsAddressError: with the reason.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MetricsAddressError(f"must be PORT or HOST:PORT, got {value!r}")
    text = str(value).strip()
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host = LOCAL_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise MetricsAddressError(
            f"must be PORT or HOST:PORT with a port from 1 to 65535, got {value!r}"
        )
    return MetricsSettings(host, int(port_text))


def port_problem(settings: MetricsSettings) -> str | None:
    """
    Why the metrics port cannot be listened on (in use, an address this
    machine does not have...), or None. Checked at start, before anything
    starts, the way Twisted will bind it.
    """
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((settings.host, settings.port))
        probe.listen(1)
    except OSError as e:
        return f"cannot listen on {settings.host}:{settings.port}: {e.strerror or e}"
    finally:
        probe.close()
    return None


class ScrapedRun(Protocol):
    """What the metrics read of a run (a ``Run`` or a ``FleetRun``)."""

    @property
    def stats(self) -> RunStats: ...

    @property
    def starts(self) -> StartStats | None: ...

    def active_cannons(self) -> int: ...


@attrs.frozen
class TurretProbes:
    """
    Where a scrape reads the turret's figures that are not a run's: each
    is called at scrape time.

    :ivar state: the turret's lifecycle state.
    :ivar reactor_lag: the watchdog's last measure of the reactor's lag, seconds.
    """

    state: Callable[[], State]
    reactor_lag: Callable[[], float]


@attrs.frozen
class SinkProbes:
    """
    Where a scrape reads the result sink's counts (None: not shown).

    :ivar pending: results waiting to be sent to the HQ.
    :ivar sent: results sent since the process started.
    :ivar dropped: results dropped since the process started.
    """

    pending: Callable[[], int] | None = None
    sent: Callable[[], int] | None = None
    dropped: Callable[[], int] | None = None


def _histogram_values(values: list[float], figures: HistogramFigures) -> None:
    """A histogram's values in prometheus_client's order: buckets, ``+Inf``, count, sum."""
    values.extend(figures.buckets)
    values.extend((figures.count, figures.count, figures.total))


def _histogram(
    family: HistogramMetricFamily, labels: list[str], take: Callable[[], float]
) -> None:
    buckets = [(le, take()) for le in _LE]
    take()  # the count: the +Inf bucket's
    family.add_metric(labels, buckets, take())


def _classes_of(seen: dict[str, int]) -> tuple[str, ...]:
    """The status classes a request name shows: :data:`STATUS_CLASSES`, and any other it has."""
    if seen.keys() <= _USUAL:
        return STATUS_CLASSES
    return tuple(sorted(_USUAL | seen.keys()))


@attrs.frozen
class Reading:
    """
    One scrape's figures, flat.

    :ivar shape: which series there are (hashable: the same shape, the
        same series, in the same order).
    :ivar values: their values, in the order prometheus_client writes them.
    """

    shape: tuple[object, ...]
    values: list[float]


class TurretCollector:
    """
    The ``oct_`` metrics (see ``docs/metrics.rst``), every one labelled
    with the turret's ``turret`` (name) and ``uuid``. :meth:`run_made` is
    told of every run as it is made; :meth:`read` reads the figures,
    :meth:`families` makes them prometheus_client's metric families
    (:meth:`collect` does both).
    """

    def __init__(self, *, name: str, uuid: str, probes: TurretProbes) -> None:
        self._labels = [name, uuid]
        self._probes = probes
        self._tally = TurretTally()
        self._run: ScrapedRun | None = None
        self._sink = SinkProbes()

    def sink_probes(self, probes: SinkProbes) -> None:
        """Where to read the result sink's counts (none are shown until then)."""
        self._sink = probes

    def run_made(self, run: ScrapedRun) -> None:
        """A new run: its figures add to those of the runs before it."""
        self._run = run
        self._tally.run_started(run.stats, run.starts)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families(self.read()))

    def read(self) -> Reading:
        """The figures now, and which series they are."""
        figures = self._tally.read()
        probes = self._probes
        values: list[float] = [figures.transactions - figures.errors, figures.errors]
        scriptrun = figures.timers.get(SCRIPTRUN_TIME)
        if scriptrun is not None:
            _histogram_values(values, scriptrun)
        custom = tuple(sorted(name for name in figures.timers if name != SCRIPTRUN_TIME))
        for timer in custom:
            _histogram_values(values, figures.timers[timer])
        run = self._run
        values.append(run.active_cannons() if run is not None else 0)
        shown = _SHOWN_STATE.get(probes.state())
        values.extend(1 if name == shown else 0 for name in STATE_NAMES)
        starts = figures.starts
        if starts is not None:
            values.extend((starts.planned, starts.started, starts.dropped))
            _histogram_values(values, starts.lag)
        sink = self._sink
        shown_probes = tuple(
            probe is not None for probe in (sink.pending, sink.sent, sink.dropped)
        )
        for probe in (sink.pending, sink.sent, sink.dropped):
            if probe is not None:
                values.append(probe())
        values.append(probes.reactor_lag())
        requests = tuple(
            (name, _classes_of(figures.requests[name].classes))
            for name in sorted(figures.requests)
        )
        for name, classes in requests:
            seen = figures.requests[name].classes
            values.extend(seen.get(label, 0) for label in classes)
        for name, _ in requests:
            _histogram_values(values, figures.requests[name].time)
        invalid = tuple(sorted(figures.invalid))
        values.extend(figures.invalid[key] for key in invalid)
        shape = (scriptrun is not None, custom, starts is not None, shown_probes, requests,
                 invalid)
        return Reading(shape, values)

    def families(self, reading: Reading) -> list[Metric]:
        """The metric families of a reading."""
        labels = self._labels
        names = ["turret", "uuid"]
        scriptrun, custom, starts, shown_probes, requests, invalid = reading.shape
        assert isinstance(custom, tuple) and isinstance(shown_probes, tuple)
        assert isinstance(requests, tuple) and isinstance(invalid, tuple)
        take = iter(reading.values).__next__
        found: list[Metric] = []

        transactions = CounterMetricFamily(
            "oct_transactions", "Transactions ended, by outcome.", labels=[*names, "outcome"]
        )
        transactions.add_metric([*labels, "ok"], take())
        transactions.add_metric([*labels, "error"], take())
        found.append(transactions)

        run_time = HistogramMetricFamily(
            "oct_scriptrun_time_seconds", "Transaction times (errors included).", labels=names
        )
        if scriptrun:
            _histogram(run_time, labels, take)
        found.append(run_time)

        timers = HistogramMetricFamily(
            "oct_custom_timer_seconds", "The scripts' custom timers.", labels=[*names, "timer"]
        )
        for timer in custom:
            _histogram(timers, [*labels, str(timer)], take)
        found.append(timers)

        found.append(
            _one(GaugeMetricFamily, "oct_active_cannons", "Cannons firing now.", names, labels, take())
        )

        state = GaugeMetricFamily(
            "oct_turret_state", "1 for the turret's state, 0 for the others.",
            labels=[*names, "state"],
        )
        for name in STATE_NAMES:
            state.add_metric([*labels, name], take())
        found.append(state)

        if starts:
            for key, what in (
                ("planned", "Starts the open model planned."),
                ("started", "Planned starts a cannon started."),
                ("dropped", "Planned starts dropped: no cannon was idle."),
            ):
                found.append(
                    _one(CounterMetricFamily, f"oct_starts_{key}", what, names, labels, take())
                )
            lag = HistogramMetricFamily(
                "oct_start_lag_seconds", "Actual start minus planned start.", labels=names
            )
            _histogram(lag, labels, take)
            found.append(lag)

        for shown, family, metric, what in zip(
            shown_probes,
            (GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily),
            ("oct_results_waiting", "oct_results_sent", "oct_results_dropped"),
            (
                "Results waiting to be sent to the HQ.",
                "Results sent (standalone: delivered to the summary).",
                "Results that could not be delivered.",
            ),
        ):
            if shown:
                found.append(_one(family, metric, what, names, labels, take()))

        found.append(
            _one(
                GaugeMetricFamily, "oct_reactor_lag_seconds",
                "How late the watchdog's last tick came (the reactor's lag).",
                names, labels, take(),
            )
        )
        if requests:
            counts = CounterMetricFamily(
                "oct_requests",
                "HTTP requests of the turret's clients, by name and status class "
                "(error: no response).",
                labels=[*names, "name", "status"],
            )
            for name, classes in requests:
                for label in classes:
                    counts.add_metric([*labels, name, label], take())
            found.append(counts)
            times = HistogramMetricFamily(
                "oct_request_seconds", "HTTP request times, by name (failures included).",
                labels=[*names, "name"],
            )
            for name, _ in requests:
                _histogram(times, [*labels, name], take)
            found.append(times)
        if invalid:
            faults = CounterMetricFamily(
                "oct_timer_invalid_values",
                "Custom timer values left out of oct_custom_timer_seconds: negative, NaN, "
                "infinite.",
                labels=[*names, "timer", "kind"],
            )
            for timer, kind in invalid:
                faults.add_metric([*labels, timer, kind], take())
            found.append(faults)
        return found


def _one(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    names: list[str],
    labels: list[str],
    value: float,
) -> Metric:
    family = kind(name, documentation, labels=names)
    family.add_metric(labels, value)
    return family
