"""
The base class for test scripts written for this turret.
"""

from __future__ import annotations

from typing import Any, Protocol

from octtwisted._core.byhand import RequestByHand


class RunClients(Protocol):
    """
    The run's HTTP clients, as a transaction sees them.
    """

    @property
    def client(self) -> Any:
        """The treq ``HTTPClient`` of ``self.http``."""

    @property
    def fast(self) -> Any:
        """The run's shared fast client."""

    def fast_session(self, owner: Any = None) -> Any:
        """A new fast HTTP session (one per cannon: ``self.fast_http``)."""

    def client_for(self, owner: Any) -> Any:
        """``self.http`` of ``owner`` (the treq client, its requests counted)."""

    def record_request(self, owner: Any, request: RequestByHand) -> None:
        """Count a request made by another client."""


def attach_clients(transaction: object, clients: RunClients) -> None:
    """
    Give ``transaction`` the run's HTTP clients (a :class:`Transaction`'s
    ``self.http`` and ``self.fast_http``; for any script,
    :func:`record_request`).
    """
    try:
        transaction._octtwisted_http = clients  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass  # an object that takes no attributes: no record_request


def record_request(
    transaction: object,
    name: str,
    seconds: float,
    *,
    method: str = "GET",
    status: int | None = None,
    size: int | None = None,
    error: str | BaseException | None = None,
) -> None:
    """
    Count one request made with another client (``requests``, a database
    driver...) in the run's per-request statistics, as ``self.fast_http``
    counts its own, and send its time to the HQ with the transaction's
    result, as ``custom_timers[name]`` (unless the config's
    ``request_timers`` is false)::

        started = time.perf_counter()
        response = requests.get(url)
        record_request(self, "GET /home", time.perf_counter() - started,
                       status=response.status_code, size=len(response.content))

    Safe from a blocking script's threads (the count is handed to the
    reactor's thread). Does nothing when the turret is not firing (a
    script's own unit test).

    :param transaction: the script's transaction (``self``).
    :param name: the request's name (the row of the summary).
    :param seconds: how long it took.
    :param method: its HTTP method.
    :param status: the response's status code (>= 400 counts as a
        failure), None without a response.
    :param size: the response body's bytes, None if not known.
    :param error: why it failed without a response: a short text or the
        exception (its class name is the reason).
    """
    request = RequestByHand(name, seconds, method, status, size, error)
    clients: RunClients | None = getattr(transaction, "_octtwisted_http", None)
    if clients is not None:
        clients.record_request(transaction, request)

from twisted.python import threadable


def _reactor_only(name: str) -> None:
    """
    Raise a clear error when ``self.<name>`` is used off the reactor thread
    (from a blocking script's thread), where it cannot work.
    """
    if threadable.ioThread is not None and not threadable.isInIOThread():
        raise RuntimeError(
            f"self.{name} belongs to the reactor, and this script's steps run "
            "in threads (blocking): use a blocking HTTP client there (such as "
            "requests), or set blocking = False to run the steps on the reactor"
        )


class Transaction:
    """
    One virtual user's transaction; the turret makes one per cannon.

    Subclass it and define ``run`` (and ``setup``, ``tear_down`` if needed).
    Each may be a plain method, return a Deferred, or be ``async def``. They
    run on the reactor thread, so they must never block: use Deferreds,
    ``treq`` or ``deferLater`` to wait. Only ``run`` is timed.

    :ivar config: the turret's whole config.json, as a dict.
    :ivar context: the HQ's transaction context (``set_transaction_context``).
    :ivar custom_timers: name -> seconds; reset before every transaction and
        sent with its result.
    """

    #: Steps run on the reactor. A subclass that sets ``blocking = True``
    #: gets its steps run in threads instead, one per cannon.
    blocking = False

    def __init__(self, config: dict[str, Any], context: dict[str, Any]) -> None:
        self.config = config
        self.context = context
        self.custom_timers: dict[str, float] = {}

    #: The run's HTTP clients (see ``http``), set by :func:`attach_clients`.
    _octtwisted_http: RunClients | None = None
    #: This transaction's ``self.http``, made on first use.
    _octtwisted_treq: Any = None
    #: This cannon's fast HTTP session, made on first use (or set by
    #: ``octtwisted.testing.StubFastHTTP.attach``).
    _octtwisted_fast_session: Any = None

    @property
    def http(self) -> Any:
        """
        The run's shared treq ``HTTPClient`` (one persistent connection pool
        for all cannons; closed when the run stops). Always read or release
        each response's body, or the connection is not reused.
        """
        _reactor_only("http")
        if self._octtwisted_http is None:
            raise RuntimeError("self.http is only available while the turret fires")
        client = self._octtwisted_treq
        if client is None:
            client = self._octtwisted_treq = self._octtwisted_http.client_for(self)
        return client

    @property
    def fast_http(self) -> Any:
        """
        This cannon's :class:`~octtwisted._http.fast.FastSession` over the
        run's shared :class:`~octtwisted._http.fast.FastHTTPClient`: HTTP/1.1
        and HTTPS keep-alive, about ten times cheaper per request than
        treq, with this cannon's own cookies, redirects followed and
        gzip/deflate decoded. ``await self.fast_http.get(url)`` gives a
        response whose whole body is already read (``.code``, ``.body``,
        ``.text()``, ``.json()``, ``.header(name)``); its timeout covers the
        body.
        """
        _reactor_only("fast_http")
        session = self._octtwisted_fast_session
        if session is None:
            if self._octtwisted_http is None:
                raise RuntimeError("self.fast_http is only available while the turret fires")
            session = self._octtwisted_fast_session = self._octtwisted_http.fast_session(self)
        return session

    def record_request(
        self,
        name: str,
        seconds: float,
        *,
        method: str = "GET",
        status: int | None = None,
        size: int | None = None,
        error: str | BaseException | None = None,
    ) -> None:
        """
        Count a request made with another client (see
        :func:`octtwisted.record_request`, which this calls with ``self``).
        """
        record_request(
            self, name, seconds, method=method, status=status, size=size, error=error
        )

    def setup(self) -> Any:
        pass

    def run(self) -> Any:
        pass

    def tear_down(self) -> Any:
        pass
