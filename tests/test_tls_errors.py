"""
What a TLS failure reads like in a transaction's error result, for
``self.http`` (treq) and ``self.fast_http`` alike: scripts run by a turret
core in this process (the cannon's path, real reactor, real sockets)
against Twisted TLS servers on 127.0.0.1 with certificates each test makes
(trustme), one standalone ``twistd oct-turret`` run whose summary's error
table shows the text, and the wording itself (unwrapping treq's and
Twisted's wrappers).
"""

from __future__ import annotations

import datetime
import json
import ssl
from pathlib import Path
from typing import Any

import trustme
from OpenSSL import SSL, crypto
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

import octtwisted
from octtwisted._firing.errortext import describe_error
from octtwisted._http.fast import CertificateError, TLSError
from octtwisted._http.fast.tlserrors import certificate_error, tls_error, tls_failure
from octtwisted.testing import make_turret
from tests.helpers import TurretProcess, write_config
from tests.tlshelpers import ServerTLS, TLSServerMixin

TRUST_HINT = "see tls_ca and tls_verify in the turret config"
VERIFY_HINT = "see tls_verify in the turret config"
CLIENT_CERT_HINT = "the server requires a client certificate: set tls_client_cert and tls_client_key"


class FastGet(octtwisted.Transaction):
    """One GET of ``target_url`` with ``self.fast_http``."""

    async def run(self) -> None:
        response = await self.fast_http.get(self.config["target_url"])
        if response.code != 200:
            raise RuntimeError(f"HTTP {response.code}")


class TreqGet(octtwisted.Transaction):
    """One GET of ``target_url`` with ``self.http`` (treq)."""

    async def run(self) -> None:
        response = await self.http.get(self.config["target_url"])
        await response.content()
        if response.code != 200:
            raise RuntimeError(f"HTTP {response.code}")


CLIENTS = {"fast_http": FastGet, "http": TreqGet}


class _Leaf:
    """
    A server certificate and key given as PEM, for :class:`ServerTLS`.
    """

    def __init__(self, cert_pem: bytes, key_pem: bytes) -> None:
        self.cert_pem, self.key_pem = cert_pem, key_pem

    def configure_cert(self, context: Any) -> None:
        context.use_certificate(crypto.load_certificate(crypto.FILETYPE_PEM, self.cert_pem))
        context.use_privatekey(crypto.load_privatekey(crypto.FILETYPE_PEM, self.key_pem))


def _self_signed(ca: trustme.CA) -> _Leaf:
    """The CA's own (self-signed, no subjectAltName) certificate as a server's."""
    return _Leaf(ca.cert_pem.bytes(), ca.private_key_pem.bytes())


def _without_names(ca: trustme.CA, common_name: str) -> _Leaf:
    """
    A certificate issued by ``ca`` whose subject's common name is
    ``common_name`` and that has no subjectAltName.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key: Any = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _Leaf(cert.public_bytes(serialization.Encoding.PEM), key_pem)


class ErrorResultTexts(TLSServerMixin, TestCase):
    """
    The error result of a transaction whose request fails in TLS, for each
    client: one line that says it was the certificate (or TLS), why, and
    with whom, the same text from both clients.
    """

    timeout = 30

    async def error_of(self, client: str, url: str, **keys: Any) -> str:
        """
        The error text of the first result of a turret core (one cannon,
        this process, the real reactor) whose transaction is ``client``'s
        GET of ``url``; ``keys`` are more config keys (``tls_ca``...).
        """
        made = make_turret(CLIENTS[client], clock=reactor, cannons=1, target_url=url, **keys)
        made.orders.order("start", "open fire")
        try:
            results = await made.sink.wait_for_results(1, timeout=10)
        finally:
            made.orders.order("kill", None)
            for _ in range(200):
                if made.exits:
                    break
                await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(made.exits, [0])
        error: str = results[0]["error"]
        self.assertNotIn("\n", error)
        return error

    async def errors_of(self, url: str, **keys: Any) -> dict[str, str]:
        """
        :meth:`error_of` for both clients.
        """
        return {client: await self.error_of(client, url, **keys) for client in CLIENTS}

    def ca_file(self, ca: trustme.CA) -> str:
        return str(self.pem_file(ca.cert_pem, "ca.pem"))

    def assertBoth(self, errors: dict[str, str], expected: str) -> None:
        """
        Both clients' error texts are ``expected``.
        """
        self.assertEqual(errors, {client: expected for client in CLIENTS})

    async def test_self_signed(self) -> None:
        """
        A self-signed server with verification on (the system's trust
        store): both clients' error is ``certificate verify failed:
        self-signed certificate``, the address, and the keys to look at.
        """
        port, _ = self.serve_tls(ServerTLS(_self_signed(trustme.CA())))
        errors = await self.errors_of(f"https://127.0.0.1:{port}/echo")
        self.assertBoth(
            errors, f"certificate verify failed: self-signed certificate (127.0.0.1:{port}); {TRUST_HINT}"
        )

    async def test_unknown_issuer(self) -> None:
        """
        A certificate from a CA other than the one ``tls_ca`` names: both
        say ``unable to get local issuer certificate``.
        """
        _, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        errors = await self.errors_of(f"https://127.0.0.1:{port}/echo", tls_ca=self.ca_file(trustme.CA()))
        self.assertBoth(
            errors,
            f"certificate verify failed: unable to get local issuer certificate (127.0.0.1:{port}); {TRUST_HINT}",
        )

    async def test_hostname_mismatch(self) -> None:
        """
        A trusted certificate (``tls_ca``) for another name: both say
        ``hostname mismatch``, the names the certificate is for and the
        host that was asked for, for an IP address and a host name alike;
        a long list of names is cut.
        """
        ca = trustme.CA()
        port, _ = self.serve_tls(ServerTLS(ca.issue_cert("example.com")))
        errors = await self.errors_of(f"https://127.0.0.1:{port}/echo", tls_ca=self.ca_file(ca))
        self.assertBoth(
            errors,
            "certificate verify failed: hostname mismatch: the certificate is for example.com, "
            f"not 127.0.0.1 (127.0.0.1:{port}); {VERIFY_HINT}",
        )
        names = ["a.example", "b.example", "c.example", "d.example", "10.1.2.3"]
        port, _ = self.serve_tls(ServerTLS(ca.issue_cert(*names)))
        errors = await self.errors_of(f"https://localhost:{port}/echo", tls_ca=self.ca_file(ca))
        self.assertBoth(
            errors,
            "certificate verify failed: hostname mismatch: the certificate is for a.example, b.example, "
            f"c.example and 2 more, not localhost (localhost:{port}); {VERIFY_HINT}",
        )

    async def test_no_subject_alt_name(self) -> None:
        """
        A trusted certificate with no subjectAltName (its common name the
        host asked for) is for no host name: both clients refuse it as a
        host name mismatch (Twisted's own check would let treq accept it).
        """
        ca = trustme.CA()
        port, _ = self.serve_tls(ServerTLS(_without_names(ca, "127.0.0.1")))
        errors = await self.errors_of(f"https://127.0.0.1:{port}/echo", tls_ca=self.ca_file(ca))
        self.assertBoth(
            errors,
            f"certificate verify failed: hostname mismatch: the certificate is not for 127.0.0.1 "
            f"(127.0.0.1:{port}); {VERIFY_HINT}",
        )

    async def test_expired(self) -> None:
        """
        A trusted certificate for the right name that expired yesterday:
        both say ``certificate has expired``; one that is also for another
        name says ``hostname mismatch`` in both (OpenSSL checks the name
        first).
        """
        ca = trustme.CA()
        now = datetime.datetime.now(datetime.timezone.utc)
        expired = ca.issue_cert(
            "127.0.0.1", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
        )
        port, _ = self.serve_tls(ServerTLS(expired))
        errors = await self.errors_of(f"https://127.0.0.1:{port}/echo", tls_ca=self.ca_file(ca))
        self.assertBoth(errors, f"certificate verify failed: certificate has expired (127.0.0.1:{port}); {VERIFY_HINT}")
        errors = await self.errors_of(f"https://localhost:{port}/echo", tls_ca=self.ca_file(ca))
        self.assertBoth(
            errors,
            "certificate verify failed: hostname mismatch: the certificate is for 127.0.0.1, not localhost "
            f"(localhost:{port}); {VERIFY_HINT}",
        )

    async def test_client_certificate_required(self) -> None:
        """
        A server that requires a client certificate, and a client without
        one: both say it was TLS, OpenSSL's reason (the server's alert)
        and that a client certificate is required, and which keys to set.
        """
        ca, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert, client_ca=trustme.CA()))
        errors = await self.errors_of(f"https://127.0.0.1:{port}/echo", tls_ca=self.ca_file(ca))
        self.assertBoth(errors, f"TLS error: tlsv13 alert certificate required (127.0.0.1:{port}); {CLIENT_CERT_HINT}")

    async def test_client_certificate_required_tls12(self) -> None:
        """
        The same over TLS 1.2, where the server's alert is a handshake
        failure: both say so in the same words (their OpenSSL versions
        word it differently), and that a client certificate may be wanted.
        """
        ca, cert = self.certificates()
        tls = ServerTLS(cert, client_ca=trustme.CA())
        tls.context.set_max_proto_version(SSL.TLS1_2_VERSION)
        port, _ = self.serve_tls(tls)
        errors = await self.errors_of(f"https://127.0.0.1:{port}/echo", tls_ca=self.ca_file(ca))
        self.assertBoth(
            errors,
            f"TLS error: tls alert handshake failure (127.0.0.1:{port}); "
            "the server refused the handshake; it may require a client certificate",
        )

    async def test_successes(self) -> None:
        """
        What should succeed still does, for both clients: a private CA
        (``tls_ca``) by IP address and host name; ``tls_verify: false``
        with a self-signed server; a client certificate given to a server
        that requires one (which saw it).
        """
        ca, cert = self.certificates()
        port, _ = self.serve_tls(ServerTLS(cert))
        for host in ("127.0.0.1", "localhost"):
            errors = await self.errors_of(f"https://{host}:{port}/echo", tls_ca=self.ca_file(ca))
            self.assertBoth(errors, "")
        port, _ = self.serve_tls(ServerTLS(_self_signed(trustme.CA())))
        self.assertBoth(await self.errors_of(f"https://127.0.0.1:{port}/echo", tls_verify=False), "")
        client_ca = trustme.CA()
        client_cert = client_ca.issue_cert("cannon.example")
        mutual = ServerTLS(cert, client_ca=client_ca)
        port, _ = self.serve_tls(mutual)
        errors = await self.errors_of(
            f"https://localhost:{port}/echo",
            tls_ca=self.ca_file(ca),
            tls_client_cert=str(self.pem_file(client_cert.cert_chain_pems[0], "client.pem")),
            tls_client_key=str(self.pem_file(client_cert.private_key_pem, "client.key")),
        )
        self.assertBoth(errors, "")
        self.assertEqual(len(mutual.peers), 2)


class TreqHostCheck(TLSServerMixin, TestCase):
    """
    ``self.http``'s own host name check cannot be skipped silently.
    """

    timeout = 20

    async def test_unchecked_host_refused(self) -> None:
        """
        When the run's verify callback never saw the server's certificate
        (here: replaced by one that accepts anything), the handshake is
        refused all the same, saying the host name could not be checked.
        """
        from twisted.web.client import Agent, HTTPConnectionPool

        from octtwisted._core.config import TLSOptions
        from octtwisted._http.tls import TLSPolicy

        ca = trustme.CA()
        port, _ = self.serve_tls(ServerTLS(ca.issue_cert("example.com")))
        policy = TLSPolicy(TLSOptions(ca=self.pem_file(ca.cert_pem, "ca.pem")))
        policy._context().set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
        agent = Agent(reactor, contextFactory=policy, pool=HTTPConnectionPool(reactor, persistent=False))
        try:
            response = await agent.request(b"GET", f"https://127.0.0.1:{port}/echo".encode())
        except Exception as exc:  # noqa: BLE001 - the failure is what is tested
            error = describe_error(exc)
        else:
            self.fail(f"expected a failure, got {response!r}")
        self.assertEqual(
            error,
            f"certificate verify failed: the host name could not be checked (127.0.0.1:{port}); {VERIFY_HINT}",
        )


class StandaloneErrorTable(TLSServerMixin, TestCase):
    """
    A real ``twistd oct-turret --standalone`` run, per client, against a
    self-signed server: the summary's error table shows the TLS text.
    """

    timeout = 60

    async def test_error_table(self) -> None:
        """
        Each client's run (``self.fast_http``, then ``self.http``) fails
        every transaction, exits 1, and its printed error table and JSON
        summary name the one error: the certificate, why, and where.
        """
        port, _ = self.serve_tls(ServerTLS(_self_signed(trustme.CA())))
        expected = f"certificate verify failed: self-signed certificate (127.0.0.1:{port}); {TRUST_HINT}"
        for client in ("fast_http", "http"):
            folder = Path(self.mktemp()).absolute()
            config = write_config(
                folder, script="https_one_client.py", hq_address=None, hq_publisher=None, hq_rc=None,
                cannons=2, rampup=0, target_url=f"https://127.0.0.1:{port}/", client=client,
            )
            turret = TurretProcess(
                ["-c", str(config), "--standalone", "--duration", "1", "--summary-json", "summary.json"], cwd=folder
            )
            self.addCleanup(turret.cleanup)
            self.assertEqual(await turret.wait_exit(), 1, turret.output)
            table = turret.output[turret.output.index("Top errors (1 most frequent)"):]
            row = table.splitlines()[3]
            self.assertIn("  certificate verify failed: self-signed certificate (127.0.0.1:", row, client)
            summary = json.loads((folder / "summary.json").read_text())
            self.assertEqual([e["error"] for e in summary["top_errors"]], [expected], client)
            self.assertEqual(summary["top_errors"][0]["count"], summary["transactions"])


class Wording(SynchronousTestCase):
    """
    The one place the texts are made: what it finds inside treq's and
    Twisted's wrappers, and what it leaves alone.
    """

    def test_wrapped_openssl_error(self) -> None:
        """
        An ``OpenSSL.SSL.Error`` inside ``ResponseNeverReceived``,
        ``RequestTransmissionFailed``, ``ResponseFailed`` or
        ``RequestGenerationFailed`` (Twisted's wrappers, as treq fails with
        them), among other failures and nested, is described as the TLS
        error, from OpenSSL's reason in its error queue.
        """
        from twisted.web._newclient import (
            RequestGenerationFailed,
            RequestTransmissionFailed,
            ResponseFailed,
            ResponseNeverReceived,
        )

        raw = SSL.Error([("SSL routines", "", "tlsv13 alert certificate required")])
        expected = f"TLS error: tlsv13 alert certificate required; {CLIENT_CERT_HINT}"
        self.assertEqual(describe_error(raw), expected)
        for wrapper in (ResponseNeverReceived, RequestTransmissionFailed, ResponseFailed, RequestGenerationFailed):
            wrapped = wrapper([Failure(ConnectionError("lost")), Failure(raw)])
            self.assertEqual(describe_error(wrapped), expected, wrapper)
            self.assertEqual(describe_error(Failure(wrapped)), expected, wrapper)
        nested = ResponseNeverReceived([Failure(RequestTransmissionFailed([Failure(raw)]))])
        self.assertEqual(describe_error(nested), expected)

    def test_hostname_mismatch_of_twisted(self) -> None:
        """
        ``service_identity``'s ``VerificationError`` (what Twisted's own
        host name check fails with) says ``hostname mismatch`` and the
        host.
        """
        from service_identity.exceptions import DNSMismatch, VerificationError
        from service_identity.hazmat import DNS_ID
        from twisted.web._newclient import ResponseNeverReceived

        error = VerificationError(errors=[DNSMismatch(mismatched_id=DNS_ID("localhost"))])
        self.assertEqual(
            describe_error(ResponseNeverReceived([Failure(error)])),
            f"certificate verify failed: hostname mismatch: the certificate is not for localhost; {VERIFY_HINT}",
        )

    def test_stdlib_errors(self) -> None:
        """
        The standard library's ``ssl`` errors (a blocking script's) read
        the same as pyOpenSSL's: a verification code gives the same words,
        an OpenSSL reason code the same words as pyOpenSSL's text.
        """
        error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        error.verify_code = 10
        error.verify_message = "certificate has expired"
        self.assertEqual(describe_error(error), f"certificate verify failed: certificate has expired; {VERIFY_HINT}")
        self.assertEqual(str(certificate_error("h:1", 18, "self signed certificate")), str(certificate_error("h:1", 18)))
        self.assertEqual(
            str(tls_error("h:1", "TLSV13_ALERT_CERTIFICATE_REQUIRED")),
            str(tls_error("h:1", "tlsv13 alert certificate required")),
        )
        for reason in ("SSLV3_ALERT_HANDSHAKE_FAILURE", "sslv3 alert handshake failure", "tls alert handshake failure"):
            self.assertEqual(
                str(tls_error("h:1", reason)),
                "TLS error: tls alert handshake failure (h:1); "
                "the server refused the handshake; it may require a client certificate",
            )
        self.assertEqual(str(certificate_error(None, 47, "some new reason")), f"certificate verify failed: some new reason; {VERIFY_HINT}")

    def test_fast_errors_are_their_text(self) -> None:
        """
        A ``self.fast_http`` TLS error is its own text, with no type name
        before it; every other error keeps ``Type: message``.
        """
        error = CertificateError("127.0.0.1:8443", "self-signed certificate")
        self.assertIs(tls_failure(error), error)
        self.assertEqual(describe_error(error), f"certificate verify failed: self-signed certificate (127.0.0.1:8443); {TRUST_HINT}")
        self.assertEqual(describe_error(TLSError("127.0.0.1:8443", "bad record mac")), "TLS error: bad record mac (127.0.0.1:8443)")

    def test_other_errors_untouched(self) -> None:
        """
        Errors that are not TLS, wrapped or not, are described as before.
        """
        from twisted.internet.error import ConnectionLost
        from twisted.web._newclient import ResponseNeverReceived

        self.assertIsNone(tls_failure(ValueError("x")))
        self.assertEqual(describe_error(ValueError("x")), "ValueError: x")
        wrapped = ResponseNeverReceived([Failure(ConnectionLost())])
        self.assertIsNone(tls_failure(wrapped))
        self.assertTrue(describe_error(wrapped).startswith("ResponseNeverReceived: "))
