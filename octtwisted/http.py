"""
The HTTP client the turret offers to non-blocking scripts (``self.http``).

One treq ``HTTPClient`` per run, over one persistent
``HTTPConnectionPool`` whose ``maxPersistentPerHost`` is the number of
cannons, so every cannon keeps its own keep-alive connection. It is made on
first use, and its connections are closed when the run stops.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred


class SharedHTTPClient:
    """
    Makes the run's treq client on first use and closes its pool at the end.

    :param reactor: the reactor the connections use.
    :param connections_per_host: kept-alive connections per host.
    """

    def __init__(self, reactor: Any, connections_per_host: int) -> None:
        self._reactor = reactor
        self._per_host = connections_per_host
        self._pool: Any = None
        self._client: Any = None

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
            self._client = HTTPClient(Agent(self._reactor, pool=pool))
        return self._client

    def close(self) -> Deferred[None]:
        """
        Close the kept-alive connections; fires when they are closed.
        """
        pool, self._pool, self._client = self._pool, None, None
        if pool is None:
            return defer.succeed(None)
        return pool.closeCachedConnections()


def _quieten(pool: Any) -> None:
    """
    Keep the pool's connection factories from logging "Starting factory"
    and "Stopping factory" for every connection (thousands in a run).
    """
    factory = getattr(pool, "_factory", None)
    if factory is not None and getattr(factory, "noisy", False):
        pool._factory = type("QuietHTTP11ClientFactory", (factory,), {"noisy": False})
