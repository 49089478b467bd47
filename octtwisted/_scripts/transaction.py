"""
The base class for test scripts written for this turret.
"""

from __future__ import annotations

from typing import Any


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
    #: gets its steps run in a thread pool instead.
    blocking = False

    def __init__(self, config: dict[str, Any], context: dict[str, Any]) -> None:
        self.config = config
        self.context = context
        self.custom_timers: dict[str, float] = {}

    #: Set by the turret: the run's shared HTTP client (see ``http``).
    _octtwisted_http: Any = None
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
        if self._octtwisted_http is None:
            raise RuntimeError("self.http is only available while the turret fires")
        return self._octtwisted_http.client

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
        session = self._octtwisted_fast_session
        if session is None:
            if self._octtwisted_http is None:
                raise RuntimeError("self.fast_http is only available while the turret fires")
            session = self._octtwisted_fast_session = self._octtwisted_http.fast_session()
        return session

    def setup(self) -> Any:
        pass

    def run(self) -> Any:
        pass

    def tear_down(self) -> Any:
        pass
