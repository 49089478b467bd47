"""
The HTTP clients the turret offers to non-blocking scripts.

- ``self.http``: one treq ``HTTPClient`` per run, over one persistent
  ``HTTPConnectionPool`` whose ``maxPersistentPerHost`` is the number of
  cannons, so every cannon keeps its own keep-alive connection.
- ``self.fast_http``: one :class:`~octtwisted._http.fast.FastHTTPClient` per
  run (HTTP/1.1 keep-alive with a C parser, about ten times cheaper per
  request than treq), with as many connections per host as cannons; each
  cannon sees it through its own :class:`~octtwisted._http.fast.FastSession`
  (its own cookies).

Both take their TLS settings from the same
:class:`~octtwisted._core.config.TLSOptions` (the ``tls_*`` config keys),
made into one TLS context (or policy) per run (:mod:`octtwisted._http.tls`).

Each is made on first use, and its connections are closed when the run
stops.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from octtwisted._core.byhand import RequestByHand
from octtwisted._core.config import TLSOptions
from octtwisted._core.httplimits import HTTPLimits
from octtwisted._http.recording import Recording, RecordingTreq


class SharedHTTPClient:
    """
    Makes the run's treq client on first use and closes its pool at the end.

    :param reactor: the reactor the connections use.
    :param connections_per_host: kept-alive connections per host.
    :param tls: how both clients treat ``https://`` servers.
    :param limits: how much of a response they read (``max_response_*``;
        treq takes the body limit, see ``docs/http.rst``).
    :param recording: counts every request of both clients in the run's
        per-request statistics, or None.
    """

    def __init__(
        self,
        reactor: Any,
        connections_per_host: int,
        tls: TLSOptions = TLSOptions(),
        limits: HTTPLimits = HTTPLimits(),
        recording: Recording | None = None,
    ) -> None:
        self.recording = recording
        self._reactor = reactor
        self._per_host = connections_per_host
        self._tls = tls
        self._limits = limits
        self._pool: Any = None
        self._client: Any = None
        self._fast: Any = None

    @property
    def client(self) -> Any:
        """
        The ``treq.client.HTTPClient`` (made now if not yet).
        """
        if self._client is None:
            from treq.client import HTTPClient
            from twisted.web.client import Agent, HTTPConnectionPool

            pool = HTTPConnectionPool(self._reactor, persistent=True)
            _quieten(pool)
            pool.maxPersistentPerHost = self._per_host
            pool.retryAutomatically = False
            self._pool = pool
            from octtwisted._http.tls import TLSPolicy

            from octtwisted._http.treqlimit import LimitedAgent

            agent = Agent(self._reactor, contextFactory=TLSPolicy(self._tls), pool=pool)
            self._client = HTTPClient(LimitedAgent(agent, self._limits.body))
        return self._client

    @property
    def fast(self) -> Any:
        """
        The run's :class:`~octtwisted._http.fast.FastHTTPClient` (made now if
        not yet).
        """
        if self._fast is None:
            from octtwisted._http.fast import FastHTTPClient
            from octtwisted._http.tls import ssl_context

            self._fast = FastHTTPClient(
                self._reactor,
                connections_per_host=self._per_host,
                tls_context=ssl_context(self._tls),
                limits=self._limits,
            )
            self._fast.recording = self.recording
        return self._fast

    def fast_session(self, owner: Any = None) -> Any:
        """
        A new :class:`~octtwisted._http.fast.FastSession` over :attr:`fast`
        (one per cannon: its own cookies), whose requests' times go to
        ``owner``'s request timers.
        """
        from octtwisted._http.fast import FastSession

        session = FastSession(self.fast)
        session.owner = owner
        return session

    def client_for(self, owner: Any) -> Any:
        """
        ``self.http`` of the transaction ``owner``: the treq client, whose
        requests are counted (and timed into ``owner``'s request timers)
        when the run records them.
        """
        client = self.client
        if self.recording is None:
            return client
        return RecordingTreq(client, self.recording, owner)

    def record_request(self, owner: Any, request: RequestByHand) -> None:
        """
        Count a request made by another client (see
        ``Transaction.record_request``); nothing when the run does not
        record requests.
        """
        if self.recording is not None:
            self.recording.record_by_hand(owner, request)

    def close(self) -> Deferred[None]:
        """
        Close the kept-alive connections; fires when they are closed.
        """
        pool, self._pool, self._client = self._pool, None, None
        fast, self._fast = self._fast, None
        closing = []
        if pool is not None:
            closing.append(pool.closeCachedConnections())
        if fast is not None:
            closing.append(fast.close())
        return defer.gatherResults(closing).addCallback(lambda _: None)


def _quieten(pool: Any) -> None:
    """
    Keep the pool's connection factories from logging "Starting factory"
    and "Stopping factory" for every connection (thousands in a run).
    """
    factory = getattr(pool, "_factory", None)
    if factory is not None and getattr(factory, "noisy", False):
        pool._factory = type("QuietHTTP11ClientFactory", (factory,), {"noisy": False})
