"""
HTTPS in both clients, against Twisted TLS servers on 127.0.0.1 with
certificates each test makes (trustme): certificate checks on and off, a
private CA, mutual TLS, SNI, ALPN, session resumption and keep-alive.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from octtwisted._core.config import TLSOptions
from octtwisted._http.fast import CertificateError, FastHTTPClient, TLSError
from octtwisted._http.shared import SharedHTTPClient
from octtwisted._http.tls import ssl_context
from tests.tlshelpers import ServerTLS, TLSServerMixin


class FastHTTPSTests(TLSServerMixin, TestCase):
    timeout = 20

    def client(self, options: TLSOptions, **kw: Any) -> FastHTTPClient:
        client = FastHTTPClient(reactor, tls_context=ssl_context(options), **kw)
        self.addCleanup(client.close)
        return client

    def trusting(self, ca: Any, **kw: Any) -> FastHTTPClient:
        return self.client(TLSOptions(ca=self.pem_file(ca.cert_pem, "ca.pem")), **kw)

    async def test_private_ca(self) -> None:
        """
        With ``tls_ca`` naming the CA that issued the server's certificate,
        an HTTPS GET succeeds; the server was offered ALPN http/1.1 only.
        """
        ca, cert = self.certificates()
        tls = ServerTLS(cert)
        port, _ = self.serve_tls(tls)
        client = self.trusting(ca)
        response = await client.get(f"https://127.0.0.1:{port}/echo", headers={"X-Test": "tls"})
        self.assertEqual((response.code, response.body), (200, b"GET "))
        self.assertEqual(response.header("x-echo"), b"tls")
        self.assertEqual(tls.alpn, [[b"http/1.1"]])

    async def test_verification_on_by_default(self) -> None:
        """
        The default context (system trust store) refuses a self-signed
        server: the request fails with a CertificateError whose text says
        it was the certificate, and why.
        """
        ca, _ = self.certificates()
        # The CA's own certificate is self-signed: serve it.
        self_signed = type("Leaf", (), {"configure_cert": lambda s, ctx: _use_ca_as_leaf(ca, ctx)})()
        port, _ = self.serve_tls(ServerTLS(self_signed))
        client = self.client(TLSOptions())
        failure = await _failure(client.get(f"https://127.0.0.1:{port}/echo"))
        self.assertIsInstance(failure, CertificateError)
        self.assertIn("certificate verify failed", str(failure))
        self.assertIn("self-signed certificate", str(failure))
        self.assertNotIn("\n", str(failure))

    async def test_untrusted_issuer(self) -> None:
        """
        A certificate from a CA the client was not told about fails with
        CertificateError naming the missing issuer.
        """
        _, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        other_ca, _ = self.certificates()
        client = self.trusting(other_ca)
        failure = await _failure(client.get(f"https://127.0.0.1:{port}/"))
        self.assertIsInstance(failure, CertificateError)
        self.assertIn("unable to get local issuer certificate", str(failure))

    async def test_hostname_checked(self) -> None:
        """
        A certificate issued for another name fails the host name check,
        with a CertificateError that says so.
        """
        ca = __import__("trustme").CA()
        cert = ca.issue_cert("elsewhere.example")
        port, _ = self.serve_tls(ServerTLS(cert))
        client = self.trusting(ca)
        failure = await _failure(client.get(f"https://127.0.0.1:{port}/"))
        self.assertIsInstance(failure, CertificateError)
        self.assertIn("127.0.0.1", failure.reason)

    async def test_verify_false(self) -> None:
        """
        ``tls_verify: false`` talks to a server whose certificate nobody
        trusts.
        """
        _, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        client = self.client(TLSOptions(verify=False))
        response = await client.get(f"https://127.0.0.1:{port}/echo")
        self.assertEqual(response.code, 200)

    async def test_sni(self) -> None:
        """
        The host name of the URL is sent as SNI (and checked against the
        certificate); an IP address is not sent as SNI.
        """
        ca, cert = self.certificates()
        tls = ServerTLS(cert)
        port, _ = self.serve_tls(tls)
        client = self.trusting(ca)
        self.assertEqual((await client.get(f"https://localhost:{port}/echo")).code, 200)
        self.assertEqual((await client.get(f"https://127.0.0.1:{port}/echo")).code, 200)
        self.assertEqual(tls.sni, [b"localhost", None])

    async def test_mutual_tls(self) -> None:
        """
        A server that requires a client certificate: with
        ``tls_client_cert`` + ``tls_client_key`` the request succeeds and the
        server saw the certificate; without, it fails with a TLSError that
        says a client certificate is wanted.
        """
        ca, cert = self.certificates()
        client_ca = __import__("trustme").CA()
        client_cert = client_ca.issue_cert("cannon.example")
        tls = ServerTLS(cert, client_ca=client_ca)
        port, _ = self.serve_tls(tls)
        with_cert = self.client(TLSOptions(
            ca=self.pem_file(ca.cert_pem, "ca.pem"),
            client_cert=self.pem_file(client_cert.cert_chain_pems[0], "client.pem"),
            client_key=self.pem_file(client_cert.private_key_pem, "client.key"),
        ))
        response = await with_cert.get(f"https://127.0.0.1:{port}/echo")
        self.assertEqual(response.code, 200)
        self.assertEqual(len(tls.peers), 1)

        without = self.trusting(ca)
        failure = await _failure(without.get(f"https://127.0.0.1:{port}/echo"))
        self.assertIsInstance(failure, TLSError)
        self.assertNotIsInstance(failure, CertificateError)
        self.assertIn("certificate required", str(failure))
        self.assertIn("client certificate", str(failure))

    async def test_session_resumed(self) -> None:
        """
        After the server closed a connection, the next one resumes the TLS
        session of the first (no full handshake).
        """
        ca, cert = self.certificates()
        port, tracking = self.serve_tls(ServerTLS(cert))
        client = self.trusting(ca, connections_per_host=1)
        self.assertEqual((await client.get(f"https://127.0.0.1:{port}/close")).body, b"bye")
        self.assertEqual((await client.get(f"https://127.0.0.1:{port}/echo")).code, 200)
        self.assertEqual(tracking.accepted, 2)
        (pool,) = client._pools.values()
        (conn,) = pool.idle
        self.assertTrue(conn.sslobj.session_reused)

    async def test_keep_alive_over_tls(self) -> None:
        """
        50 requests from 5 concurrent loops use at most 5 connections
        (kept alive, one handshake each).
        """
        ca, cert = self.certificates()
        port, tracking = self.serve_tls(ServerTLS(cert))
        client = self.trusting(ca, connections_per_host=5)
        url = f"https://127.0.0.1:{port}/echo"

        async def loop() -> None:
            for _ in range(10):
                self.assertEqual((await client.get(url)).code, 200)

        from twisted.internet import defer

        await defer.gatherResults([defer.ensureDeferred(loop()) for _ in range(5)])
        self.assertEqual(client.requests, 50)
        self.assertLessEqual(tracking.accepted, 5)
        self.assertLessEqual(client.connections_opened, 5)

    async def test_one_write_per_request(self) -> None:
        """
        On a kept-alive TLS connection, a request with headers and a body
        goes out in exactly one TCP write (one TLS record).
        """
        ca, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        client = self.trusting(ca, connections_per_host=1)
        url = f"https://127.0.0.1:{port}/echo"
        self.assertEqual((await client.get(url)).code, 200)
        (pool,) = client._pools.values()
        (conn,) = pool.idle
        writes: list[bytes] = []
        real_write = conn.tcp_write

        def counting(data: bytes) -> None:
            writes.append(data)
            real_write(data)

        conn.tcp_write = counting
        response = await client.post(url, b"x" * 2000, headers={"X-Test": "one", "X-Other": "two"})
        self.assertEqual(response.body, b"POST " + b"x" * 2000)
        self.assertEqual(len(writes), 1)

    async def test_server_closes_idle_connection(self) -> None:
        """
        When the server closes a kept-alive TLS connection (close_notify,
        then TCP), the next request goes out on a new connection and
        succeeds; the old one is not reused.
        """
        ca, cert = self.certificates()
        port, tracking = self.serve_tls(ServerTLS(cert))
        client = self.trusting(ca, connections_per_host=1)
        url = f"https://127.0.0.1:{port}/echo"
        self.assertEqual((await client.get(url)).code, 200)
        for p in list(tracking.protocols):
            # twisted.web's channel is the TLS transport's producer: TLS
            # shuts down (close_notify) only once it is unregistered.
            p.transport.unregisterProducer()
            p.transport.loseConnection()
        await tracking.all_closed()
        self.assertEqual((await client.get(url)).code, 200)
        self.assertEqual(tracking.accepted, 2)
        self.assertEqual(client.connections_opened, 2)

    async def test_plain_http_port_is_a_tls_error(self) -> None:
        """
        ``https://`` to a port that speaks plain HTTP fails with a one-line
        TLSError, not a hang.
        """
        from twisted.internet.protocol import Factory, Protocol

        from tests.test_fasthttp import OK_RESPONSE

        class Plain(Protocol):
            def dataReceived(self, data: bytes) -> None:
                self.transport.write(OK_RESPONSE)

        factory = Factory.forProtocol(Plain)
        factory.noisy = False
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = self.client(TLSOptions(verify=False), timeout=5)
        failure = await _failure(client.get(f"https://127.0.0.1:{port.getHost().port}/"))
        self.assertIsInstance(failure, TLSError)


class TreqHTTPSTests(TLSServerMixin, TestCase):
    """
    ``self.http`` (treq) takes the same TLS options.
    """

    timeout = 20

    def shared(self, options: TLSOptions) -> Any:
        shared = SharedHTTPClient(reactor, 2, options)
        self.addCleanup(shared.close)
        return shared.client

    async def test_private_ca(self) -> None:
        """
        treq with ``tls_ca`` reaches a server whose CA is that one.
        """
        ca, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        client = self.shared(TLSOptions(ca=self.pem_file(ca.cert_pem, "ca.pem")))
        response = await client.get(f"https://127.0.0.1:{port}/echo")
        self.assertEqual(await response.content(), b"GET ")

    async def test_verification_on_by_default(self) -> None:
        """
        treq with the default options refuses a certificate from an unknown
        CA.
        """
        _, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        client = self.shared(TLSOptions())
        failure = await _failure(client.get(f"https://127.0.0.1:{port}/echo"))
        self.assertIn("certificate verify failed", repr(failure))

    async def test_verify_false_and_client_cert(self) -> None:
        """
        treq with ``tls_verify: false`` and a client certificate reaches a
        server that requires one and whose certificate nobody trusts; the
        server saw the client certificate.
        """
        _, cert = self.certificates()
        client_ca = __import__("trustme").CA()
        client_cert = client_ca.issue_cert("cannon.example")
        tls = ServerTLS(cert, client_ca=client_ca)
        port, _ = self.serve_tls(tls)
        both = self.pem_file(client_cert.private_key_and_cert_chain_pem, "client.pem")
        client = self.shared(TLSOptions(verify=False, client_cert=both))
        response = await client.get(f"https://localhost:{port}/echo")
        self.assertEqual(await response.content(), b"GET ")
        self.assertEqual(len(tls.peers), 1)
        self.assertEqual(tls.sni, [b"localhost"])


def _use_ca_as_leaf(ca: Any, context: Any) -> None:
    from OpenSSL import crypto

    context.use_certificate(crypto.load_certificate(crypto.FILETYPE_PEM, ca.cert_pem.bytes()))
    context.use_privatekey(crypto.load_privatekey(crypto.FILETYPE_PEM, ca.private_key_pem.bytes()))


async def _failure(d: Any) -> BaseException:
    """
    The exception ``d`` fails with (the test fails if it succeeds).
    """
    try:
        result = await d
    except BaseException as exc:  # noqa: B902 - we want whatever it is
        return exc
    raise AssertionError(f"expected a failure, got {result!r}")


class TurretHTTPSEndToEnd(TLSServerMixin, TestCase):
    """
    A real ``twistd oct-turret`` whose script uses both clients over HTTPS.
    """

    timeout = 60

    async def run_turret(self, **keys: Any) -> list[dict[str, Any]]:
        from pathlib import Path

        from octtwisted.testing import FakeHQ
        from tests.helpers import TurretProcess, write_config

        hq = FakeHQ()
        hq.start()
        self.addCleanup(hq.stop)
        folder = Path(self.mktemp()).absolute()
        config = write_config(folder, script="https_get.py", **{**hq.turret_config(), "cannons": 2, **keys})
        turret = TurretProcess(["-c", str(config)], cwd=folder)
        self.addCleanup(turret.cleanup)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        results = await hq.wait_for_results(6)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(), 0, turret.output)
        self.turret_output = turret.output
        return results

    async def test_tls_ca_and_certificate_error(self) -> None:
        """
        With ``tls_ca`` both clients reach the test CA's server (no error
        results); without it, every result is an error that says the
        certificate failed to verify, and why.
        """
        ca, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        url = f"https://127.0.0.1:{port}/echo"
        ca_file = self.pem_file(ca.cert_pem, "ca.pem")
        results = await self.run_turret(target_url=url, tls_ca=str(ca_file))
        self.assertEqual({r["error"] for r in results}, {""})
        results = await self.run_turret(target_url=url)
        for result in results:
            self.assertIn("certificate verify failed", result["error"])
            self.assertIn("unable to get local issuer certificate", result["error"])

    async def test_verify_false_warned(self) -> None:
        """
        ``tls_verify: false`` reaches a server nobody trusts, and the turret
        warns about it once, at start.
        """
        _, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        results = await self.run_turret(target_url=f"https://127.0.0.1:{port}/echo", tls_verify=False)
        self.assertEqual({r["error"] for r in results}, {""})
        self.assertEqual(self.turret_output.count("are NOT checked"), 1, self.turret_output)
