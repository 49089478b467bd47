"""
TLS servers for the tests: twisted.web on 127.0.0.1 over Twisted's TLS
(pyOpenSSL), with certificates made by trustme for each test, recording
the SNI names and ALPN offers it sees and the client certificates it gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trustme
from OpenSSL import SSL
from twisted.internet import defer, reactor
from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Request
from zope.interface import implementer

from tests.test_fasthttp import Echo, QuietSite, TrackingFactory


@implementer(IOpenSSLContextFactory)
class ServerTLS:
    """
    A pyOpenSSL server context (Twisted's old-style ``getContext``
    factory) for ``cert``; with ``client_ca``, a client certificate
    issued by it is required.
    """

    def __init__(self, cert: Any, client_ca: trustme.CA | None = None) -> None:
        self.sni: list[bytes | None] = []
        self.alpn: list[list[bytes]] = []
        self.peers: list[str] = []
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        cert.configure_cert(context)
        context.set_tlsext_servername_callback(lambda conn: self.sni.append(conn.get_servername()))

        def select(conn: Any, offered: list[bytes]) -> bytes:
            self.alpn.append(offered)
            return b"http/1.1"

        context.set_alpn_select_callback(select)
        context.set_session_id(b"octtwisted-tests")
        if client_ca is not None:
            client_ca.configure_trust(context)

            def verify(conn: Any, x509: Any, errno: int, depth: int, ok: int) -> bool:
                if depth == 0 and ok:
                    self.peers.append(x509.get_subject().commonName or "")
                return bool(ok)

            context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
        self.context = context

    def getContext(self) -> Any:
        return self.context


class CloseAfter(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"connection", b"close")
        return b"bye"


class TLSServerMixin:
    """
    ``serve_tls`` for a trial TestCase: a TLS site on 127.0.0.1, stopped
    with the test.
    """

    def certificates(self: Any) -> tuple[trustme.CA, Any]:
        """
        A fresh CA and a server certificate it issued for ``localhost`` and
        ``127.0.0.1``.
        """
        ca = trustme.CA()
        return ca, ca.issue_cert("localhost", "127.0.0.1")

    def pem_file(self: Any, blob: Any, name: str) -> Path:
        """
        Write a trustme blob (or bytes) to a file of this test.
        """
        folder = Path(self.mktemp()).absolute()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(blob if isinstance(blob, bytes) else blob.bytes())
        return path

    def serve_tls(self: Any, tls: ServerTLS, root: Resource | None = None) -> tuple[int, TrackingFactory]:
        """
        Serve ``root`` (by default /echo and /close) over ``tls``; return the
        port and the factory that counts connections.
        """
        if root is None:
            root = Resource()
            root.putChild(b"echo", Echo())
            root.putChild(b"close", CloseAfter())
        tracking = TrackingFactory(QuietSite(root))
        port = reactor.listenSSL(0, tracking, tls, interface="127.0.0.1")

        async def stop() -> None:
            await port.stopListening()
            for p in list(tracking.protocols):
                p.transport.abortConnection()
            await tracking.all_closed()

        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        return port.getHost().port, tracking


__all__ = ["ServerTLS", "TLSServerMixin", "TestCase"]
