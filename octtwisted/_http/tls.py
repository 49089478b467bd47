"""
The run's TLS settings (:class:`~octtwisted._core.config.TLSOptions`, from
the ``tls_*`` config keys) made into what each client needs, once per run:

- :func:`ssl_context`: the standard library :class:`ssl.SSLContext` of
  ``self.fast_http`` (every connection of the run shares it, so that TLS
  sessions can be resumed);
- :class:`TLSPolicy`: the ``IPolicyForHTTPS`` of ``self.http``'s treq
  ``Agent`` (Twisted's TLS, pyOpenSSL underneath), one pyOpenSSL context
  per run and one connection creator per host kept for the run (the
  connections, their checks and their errors: :mod:`.treqtls`).

Both verify the server's certificate against the system's trust store,
host name included, unless the config says otherwise (``tls_ca``: a PEM
file of CAs to trust instead; ``tls_verify: false``: no check at all),
send SNI, offer ALPN ``http/1.1``, and present the client certificate of
``tls_client_cert`` + ``tls_client_key`` when one is set. Both report a
TLS failure in the same words (:mod:`octtwisted._http.fast.tlserrors`).
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
    kept for the run, over one pyOpenSSL context (see
    :mod:`octtwisted._http.treqtls`: what is checked, and the error texts).
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
        self._made_context: Any = None

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        key = (hostname, port)
        creator = self._creators.get(key)
        if creator is None:
            from octtwisted._http.treqtls import ConnectionCreator

            creator = ConnectionCreator(hostname.decode("ascii"), port, self._context())
            self._creators[key] = creator
        return creator

    def _context(self) -> Any:
        """
        The run's one pyOpenSSL context: the trust roots (none with
        ``tls_verify: false``), ALPN, the client certificate, and the
        verify callback of :mod:`octtwisted._http.treqtls`.
        """
        if self._made_context is None:
            from OpenSSL import SSL
            from twisted.internet import ssl as tssl

            from octtwisted._http.treqtls import verify

            extra: dict[str, Any] = {}
            if self._client_cert is not None:
                extra = {
                    "privateKey": self._client_cert.privateKey.original,
                    "certificate": self._client_cert.original,
                }
            protocols = [p.encode() for p in _ALPN]
            if self._options.verify:
                options = tssl.CertificateOptions(trustRoot=self._trust, acceptableProtocols=protocols, **extra)
            else:
                options = tssl.CertificateOptions(verify=False, acceptableProtocols=protocols, **extra)
            context = options.getContext()
            if self._options.verify:
                context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
            self._made_context = context
        return self._made_context
