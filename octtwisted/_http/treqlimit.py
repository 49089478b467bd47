"""
The body limit of the treq client (``self.http``): an agent under treq's
that gives up a response past ``max_response_body`` bytes of body.

treq (like Twisted's ``readBody``) collects a whole body before its
Deferred fires; a target that streams without end would grow the turret's
memory until the kernel ends it. :class:`LimitedAgent` wraps each
response so that its body's reader sees at most the limit: past it the
connection is closed and the reader fails with
:class:`~octtwisted._http.fast.errors.ResponseTooLarge`, in the words of
``self.fast_http``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.python.components import proxyForInterface
from twisted.python.failure import Failure
from twisted.web.iweb import IAgent, IResponse
from zope.interface import implementer

from octtwisted._http.fast.errors import ResponseTooLarge


class _Limiter(Protocol):
    """
    Stands between a response's body and its reader: passes at most
    ``limit`` bytes, then stops the transfer and fails the reader.
    """

    #: the response's body transport (a producer: stopping it closes the
    #: connection)
    transport: Any = None

    def __init__(self, reader: Any, limit: int, address: str) -> None:
        self.reader = reader
        self.limit = limit
        self.address = address
        self.size = 0
        self.done = False

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport
        self.reader.makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        if self.done:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.done = True
            if self.transport is not None:
                self.transport.stopProducing()  # closes the connection
            self.reader.connectionLost(
                Failure(ResponseTooLarge(self.address, "body", self.limit, "max_response_body"))
            )
            return
        self.reader.dataReceived(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        if not self.done:
            self.done = True
            self.reader.connectionLost(reason)


class _LimitedResponse(proxyForInterface(IResponse)):  # type: ignore[misc]
    def __init__(self, original: Any, limit: int, address: str) -> None:
        super().__init__(original)
        self._limit = limit
        self._address = address

    def deliverBody(self, protocol: Any) -> None:
        self.original.deliverBody(_Limiter(protocol, self._limit, self._address))


@implementer(IAgent)
class LimitedAgent:
    """
    ``agent``, whose responses' bodies stop at ``limit`` bytes.
    """

    def __init__(self, agent: Any, limit: int) -> None:
        self._agent = agent
        self._limit = limit

    def request(
        self, method: bytes, uri: bytes, headers: Any = None, bodyProducer: Any = None
    ) -> Deferred[Any]:
        address = urlsplit(uri).netloc.decode("latin-1")
        d: Deferred[Any] = self._agent.request(method, uri, headers, bodyProducer)
        return d.addCallback(_LimitedResponse, self._limit, address)
