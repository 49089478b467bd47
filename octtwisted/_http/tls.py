"""
The run's TLS settings (:class:`~octtwisted._core.config.TLSOptions`, from
the ``tls_*`` config keys) made into what each client needs, once per run:

- :func:`ssl_context`: the standard library :class:`ssl.SSLContext` of
  ``self.fast_http`` (every connection of the run shares it, so that TLS
  sessions can be resumed);
- :class:`TLSPolicy`: the ``IPolicyForHTTPS`` of ``self.http``'s treq
  ``Agent`` (Twisted's TLS, pyOpenSSL underneath), one connection creator
  per host kept for the run.

Both verify the server's certificate against the system's trust store,
host name included, unless the config says otherwise (``tls_ca``: a PEM
file of CAs to trust instead; ``tls_verify: false``: no check at all),
send SNI, offer ALPN ``http/1.1``, and present the client certificate of
``tls_client_cert`` + ``tls_client_key`` when one is set.
"""

from __future__ import annotations

import ssl
from typing import Any

from zope.interface import implementer

from octtwisted._core.config import TLSOptions

#: ALPN: this turret's clients speak HTTP/1.1 only.
_ALPN = ["http/1.1"]


def ssl_context(options: TLSOptions = TLSOptions()) -> ssl.SSLContext:
    """
    A client context for ``options`` (the files were checked when the
    config was read).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if options.verify:
        if options.ca is not None:
            context.load_verify_locations(cafile=str(options.ca))
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.client_cert is not None:
        key = options.client_key
        context.load_cert_chain(str(options.client_cert), str(key) if key is not None else None)
    context.set_alpn_protocols(_ALPN)
    return context


def _pem_blocks(data: bytes, kind: bytes) -> list[bytes]:
    """
    The ``-----BEGIN <kind>-----`` blocks of a PEM file.
    """
    begin, end = b"-----BEGIN " + kind + b"-----", b"-----END " + kind + b"-----"
    blocks = []
    start = data.find(begin)
    while start >= 0:
        stop = data.find(end, start)
        if stop < 0:
            break
        blocks.append(data[start : stop + len(end)] + b"\n")
        start = data.find(begin, stop)
    return blocks


def _private_key_block(data: bytes) -> bytes:
    start = data.find(b"-----BEGIN ")
    while start >= 0:
        line_end = data.find(b"-----", start + 11)
        label = data[start + 11 : line_end]
        if label.endswith(b"PRIVATE KEY"):
            stop = data.find(b"-----END " + label + b"-----", line_end)
            return data[start : stop + len(label) + 14] + b"\n"
        start = data.find(b"-----BEGIN ", line_end)
    raise ValueError("no private key in the PEM data")


def _implements_policy(cls: type) -> type:
    from twisted.web.iweb import IPolicyForHTTPS

    made: type = implementer(IPolicyForHTTPS)(cls)
    return made


@_implements_policy
class TLSPolicy:
    """
    treq's (``twisted.web.client.Agent``'s) ``contextFactory`` for
    ``options``: a connection creator per ``(host, port)``, made once and
    kept for the run.
    """

    def __init__(self, options: TLSOptions = TLSOptions()) -> None:
        from twisted.internet import ssl as tssl

        self._options = options
        self._creators: dict[tuple[bytes, int], Any] = {}
        self._client_cert: Any = None
        if options.client_cert is not None:
            cert_pem = options.client_cert.read_bytes()
            key_pem = (options.client_key or options.client_cert).read_bytes()
            self._client_cert = tssl.PrivateCertificate.loadPEM(
                _pem_blocks(cert_pem, b"CERTIFICATE")[0] + _private_key_block(key_pem)
            )
        self._trust: Any = None
        if options.verify:
            if options.ca is not None:
                certificates = [
                    tssl.Certificate.loadPEM(block)
                    for block in _pem_blocks(options.ca.read_bytes(), b"CERTIFICATE")
                ]
                self._trust = tssl.trustRootFromCertificates(certificates)
            else:
                self._trust = tssl.platformTrust()
        self._unverified_context: Any = None

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        key = (hostname, port)
        creator = self._creators.get(key)
        if creator is None:
            creator = self._creators[key] = self._make_creator(hostname.decode("ascii"))
        return creator

    def _make_creator(self, host: str) -> Any:
        from twisted.internet import ssl as tssl

        if self._options.verify:
            extra = {}
            if self._client_cert is not None:
                extra["clientCertificate"] = self._client_cert
            return tssl.optionsForClientTLS(
                host, trustRoot=self._trust, acceptableProtocols=[p.encode() for p in _ALPN], **extra
            )
        if self._unverified_context is None:
            extra = {}
            if self._client_cert is not None:
                extra = {
                    "privateKey": self._client_cert.privateKey.original,
                    "certificate": self._client_cert.original,
                }
            self._unverified_context = tssl.CertificateOptions(
                verify=False, acceptableProtocols=[p.encode() for p in _ALPN], **extra
            ).getContext()
        return _UnverifiedCreator(host, self._unverified_context)


def _implements_creator(cls: type) -> type:
    from twisted.internet.interfaces import IOpenSSLClientConnectionCreator

    made: type = implementer(IOpenSSLClientConnectionCreator)(cls)
    return made


@_implements_creator
class _UnverifiedCreator:
    """
    ``tls_verify: false`` for treq: TLS connections that send SNI and check
    nothing.
    """

    def __init__(self, host: str, context: Any) -> None:
        self._host = host.encode("idna")
        self._context = context

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        from OpenSSL.SSL import Connection

        connection = Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if not _is_ip(self._host):
            connection.set_tlsext_host_name(self._host)
        return connection


def _is_ip(host: bytes) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.decode("ascii"))
    except ValueError:
        return False
    return True
