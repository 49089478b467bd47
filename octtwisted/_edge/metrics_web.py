"""
The ``--metrics`` endpoint: ``GET /metrics`` (and ``HEAD``) in
Prometheus's text format, made by ``prometheus_client`` from the
turret's :class:`~octtwisted._edge.metrics.TurretCollector`, served by
twisted.web on the reactor. Any other path is a 404, any other method a
405.

A scrape is rendered at most once per :data:`FRESH_FOR` seconds: any
number of scrapers at once cost the reactor one rendering. At most
:data:`MAX_SCRAPERS` connections are open at once (more are closed at
once), an idle connection is closed after :data:`IDLE_TIMEOUT` seconds,
and a scraper that asks again while its earlier answers still wait to be
written (it does not read them: the connection's buffer is full) is
disconnected: the endpoint's memory is bounded whatever the scrapers do.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.utils import floatToGoString
from twisted.application.service import Service
from twisted.internet.interfaces import IListeningPort, IReactorTCP, IReactorTime
from twisted.internet.interfaces import IPushProducer
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web.resource import NoResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from octtwisted._core import logs
from octtwisted._edge.metrics import MetricsSettings, Reading, TurretCollector

#: Seconds a rendered scrape is served again to other scrapers.
FRESH_FOR = 0.25

#: Most connections open at once.
MAX_SCRAPERS = 64

#: Seconds after which a connection that sends nothing is closed.
IDLE_TIMEOUT = 30.0

#: Bytes a scraper's connection hands the kernel in one write: the whole
#: answer, as far as the socket takes it. (Twisted's default, 128 KiB,
#: spreads a 4 MB answer over 32 turns of the reactor, each behind the
#: cannons due then.)
SEND_LIMIT = 8 * 1024 * 1024


class ScrapeCache:
    """
    The rendered metrics, made again once they are :data:`FRESH_FOR`
    seconds old.
    """

    def __init__(self, render: Callable[[], bytes], clock: IReactorTime) -> None:
        self._render = render
        self._clock = clock
        self._body = b""
        self._made: float | None = None
        #: how many times the metrics were rendered
        self.renders = 0

    def __call__(self) -> bytes:
        now = self._clock.seconds()
        if self._made is None or now - self._made >= FRESH_FOR:
            self._body = self._render()
            self._made = now
            self.renders += 1
        return self._body


def registry_renderer(collector: TurretCollector) -> Callable[[], bytes]:
    """
    The text format of a registry holding the collector alone, all of it
    made by prometheus_client at each call (what :class:`TemplateRenderer`
    writes faster, byte for byte).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return lambda: generate_latest(registry)


class _Families:
    """A collector of fixed metric families."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _formatted(values: list[float]) -> list[str]:
    """
    prometheus_client's ``floatToGoString`` of each value; an int (the
    counts: nearly every value, and few distinct ones, as a histogram's
    cumulative buckets repeat their neighbours') is formatted once per
    call. A float is formatted each time: ``0.0`` and ``-0.0`` are one key.
    """
    memo: dict[int, str] = {}
    out: list[str] = []
    append = out.append
    for value in values:
        if type(value) is int:
            text = memo.get(value)
            if text is None:
                text = memo[value] = floatToGoString(value)
            append(text)
        else:
            append(floatToGoString(value))
    return out


class TemplateRenderer:
    """
    The collector's metrics in prometheus_client's text format, written
    fast: prometheus_client renders every series (the ``# HELP`` and
    ``# TYPE`` lines, the names, the labels and their escaping) once for
    each shape of the figures (which timers, which probes: see
    :class:`~octtwisted._edge.metrics.Reading`); a scrape reads the
    figures and writes each value, formatted by prometheus_client's
    ``floatToGoString``, after its series' text. The bytes are those of
    :func:`registry_renderer`, at a fifth of the cost (``docs/metrics.rst``).
    """

    def __init__(self, collector: TurretCollector) -> None:
        self._collector = collector
        self._shape: tuple[object, ...] | None = None
        self._parts: list[str] = []
        #: how many times prometheus_client rendered the series
        self.templates = 0

    def __call__(self) -> bytes:
        reading = self._collector.read()
        if reading.shape != self._shape:
            self._parts = self._template(reading)
            self._shape = reading.shape
            self.templates += 1
        parts = self._parts.copy()
        parts[1::2] = _formatted(reading.values)
        return "".join(parts).encode("utf-8")

    def _template(self, reading: Reading) -> list[str]:
        """
        The text of each series, up to its value, with a slot for the
        value after each: ``[text, slot, text, slot, ..., text]``.
        """
        zeros = Reading(reading.shape, [0] * len(reading.values))
        text = generate_latest(_Families(self._collector.families(zeros))).decode("utf-8")
        parts: list[str] = []
        series = ""
        for line in text.splitlines(keepends=True):
            if line.startswith("#"):
                series += line
                continue
            if not line.endswith(" 0\n") and not line.endswith(" 0.0\n"):
                raise ValueError(f"not a sample line of value 0: {line!r}")
            parts.extend((series + line[: line.rindex(" ") + 1], ""))
            series = "\n"
        parts.append(series)
        if len(parts) != 2 * len(reading.values) + 1:
            raise ValueError(
                f"{(len(parts) - 1) // 2} samples rendered for {len(reading.values)} values"
            )
        return parts


class MetricsPage(Resource):
    """``/metrics``: GET or HEAD; anything below it is a 404."""

    isLeaf = True

    def __init__(self, body: Callable[[], bytes]) -> None:
        super().__init__()
        self._body = body

    def render_GET(self, request: Request) -> bytes | int:
        connection = request.channel.transport if request.channel is not None else None
        if isinstance(connection, ScraperConnection) and connection.backed_up:
            connection.abortConnection()
            return NOT_DONE_YET
        if request.postpath:
            page: bytes = NoResource().render(request)
            return page
        request.setHeader(b"content-type", CONTENT_TYPE_PLAIN_0_0_4.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return self._body()


class MetricsRoot(Resource):
    """Serves ``/metrics`` and nothing else (404)."""

    def __init__(self, body: Callable[[], bytes]) -> None:
        super().__init__()
        self._page = MetricsPage(body)

    def getChild(self, path: bytes, request: Any) -> Resource:
        return self._page if path == b"metrics" else NoResource()

    def render(self, request: Any) -> bytes:
        page: bytes = NoResource().render(request)
        return page


@implementer(IPushProducer)
class _PauseWatch:
    """Passes the transport's pauses on to the producer, noting them."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self.paused = False

    def pauseProducing(self) -> None:
        self.paused = True
        self._producer.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        self._producer.resumeProducing()

    def stopProducing(self) -> None:
        self._producer.stopProducing()


class ScraperConnection(ProtocolWrapper):
    """One scraper's connection, which knows when its answers back up."""

    _watch: _PauseWatch | None = None

    def makeConnection(self, transport: Any) -> None:
        if isinstance(getattr(transport, "SEND_LIMIT", None), int):
            transport.SEND_LIMIT = SEND_LIMIT  # the TCP transport's, for this connection
        super().makeConnection(transport)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if streaming:
            self._watch = _PauseWatch(producer)
            producer = self._watch
        transport: Any = self.transport
        transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._watch = None
        transport: Any = self.transport
        transport.unregisterProducer()

    @property
    def backed_up(self) -> bool:
        """The scraper does not read: what was written waits (the buffer is full)."""
        return self._watch is not None and self._watch.paused


class LimitedFactory(WrappingFactory):
    """At most ``limit`` connections open at once; more are closed at once."""

    protocol = ScraperConnection

    def __init__(self, wrapped: Site, limit: int) -> None:
        super().__init__(wrapped)
        self._limit = limit

    def buildProtocol(self, addr: Any) -> Any:
        if len(self.protocols) >= self._limit:
            return None
        return super().buildProtocol(addr)


def metrics_site(body: Callable[[], bytes], *, limit: int = MAX_SCRAPERS) -> LimitedFactory:
    """The factory that serves ``body`` at ``/metrics``."""
    site = Site(MetricsRoot(body), timeout=IDLE_TIMEOUT)
    site.displayTracebacks = False
    site.noisy = False
    factory = LimitedFactory(site, limit)
    factory.noisy = False
    return factory


class MetricsService(Service):
    """
    Listens on the metrics address while the turret runs; stops
    listening when it stops.
    """

    log = logs.logger(logs.METRICS)

    def __init__(
        self, settings: MetricsSettings, collector: TurretCollector, reactor: Any
    ) -> None:
        self._settings = settings
        self._reactor: IReactorTCP = reactor
        clock: IReactorTime = reactor
        #: the rendered metrics (at most once per FRESH_FOR seconds)
        self.cache = ScrapeCache(TemplateRenderer(collector), clock)
        self._port: IListeningPort | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one asked for, or the one given for 0)."""
        assert self._port is not None
        port: int = getattr(self._port.getHost(), "port")
        return port

    def startService(self) -> None:
        super().startService()
        settings = self._settings
        factory: Any = metrics_site(self.cache)
        self._port = self._reactor.listenTCP(settings.port, factory, interface=settings.host)
        self.log.info(
            "metrics for Prometheus at http://{host}:{port}/metrics",
            host=settings.host,
            port=self.port,
        )
        if not settings.local:
            self.log.warn(
                "the metrics endpoint on {host}:{port} has no authentication: "
                "anyone who can reach it can read the turret's figures",
                host=settings.host,
                port=self.port,
            )

    def stopService(self) -> Any:
        super().stopService()
        port, self._port = self._port, None
        if port is not None:
            return port.stopListening()
        return None
