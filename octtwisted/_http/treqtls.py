"""
``self.http``'s TLS connections (Twisted's TLS, pyOpenSSL underneath), one
:class:`ConnectionCreator` per ``(host, port)``, made by
:class:`~octtwisted._http.tls.TLSPolicy` over the run's one pyOpenSSL
context.

They check what Twisted's ``optionsForClientTLS`` checks: the certificate
chain (OpenSSL, against the run's trust roots) and the host name
(``service_identity``, as Twisted does it), but in a verify callback of
this module's, which keeps why a check failed. And their failures say
what went wrong: each ``OpenSSL.SSL.Error`` the connection raises (the
handshake refused, a certificate that did not verify, a TLS alert from
the server) is raised again as one that is also ``self.fast_http``'s
:class:`~octtwisted._http.fast.errors.CertificateError` or
:class:`~octtwisted._http.fast.errors.TLSError`, in the words of
:mod:`octtwisted._http.fast.tlserrors`. Twisted puts it in the
``reasons`` of the ``ResponseNeverReceived`` (or the like) that treq
fails with, and the turret's error result is its text, as for
``self.fast_http``: ``certificate verify failed: self-signed certificate
(127.0.0.1:8443); see tls_ca and tls_verify in the turret config``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from OpenSSL import SSL
from service_identity.exceptions import CertificateError as _NoIdentity
from service_identity.exceptions import VerificationError
from service_identity.hazmat import DNS_ID, DNSPattern, IPAddress_ID, IPAddressPattern, verify_service_identity
from service_identity.pyopenssl import extract_patterns
from zope.interface import implementer

from octtwisted._http.fast.errors import CertificateError, TLSError
from octtwisted._http.fast.tlserrors import HOSTNAME_MISMATCH, certificate_error, from_openssl_error


class _KeepsQueue(Exception):
    """
    Its ``str()`` is the text it was made with, while its ``args`` are
    set to the ``OpenSSL.SSL.Error``'s it stands for (Twisted reads
    OpenSSL's error queue in ``args[0]``).
    """

    text = ""

    def __str__(self) -> str:
        return self.text


class TreqCertificateError(_KeepsQueue, CertificateError, SSL.Error):
    """
    A certificate that did not verify, for ``self.http``: an
    ``OpenSSL.SSL.Error`` (what Twisted's TLS layer expects) that is also
    ``self.fast_http``'s :class:`CertificateError`.
    """


class TreqTLSError(_KeepsQueue, TLSError, SSL.Error):
    """
    Any other failure of ``self.http``'s TLS layer: an
    ``OpenSSL.SSL.Error`` that is also ``self.fast_http``'s
    :class:`TLSError`.
    """


class _CheckedConnection(SSL.Connection):
    """
    A pyOpenSSL connection that knows whom it talks to and why its
    certificate check failed, and whose errors say so.
    """

    #: ``host:port``, for the error texts.
    address = ""
    #: The host name (or IP address) the certificate must be for.
    host = ""
    is_ip = False
    #: The context checks certificates (not ``tls_verify: false``).
    checks = False
    #: :func:`verify` checked the host name, and it matched.
    host_checked = False
    #: ``(code, message, names)`` of the first check that failed.
    failed_check: tuple[int, str, tuple[str, ...]] | None = None

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except SSL.Error as exc:
            if type(exc) is not SSL.Error:
                raise  # WantReadError and the like: not failures
            raise self.explained(exc) from exc
        if self.checks and not self.host_checked:
            # OpenSSL did not show :func:`verify` the server's own
            # certificate: never talk to a host whose name went unchecked.
            self.failed_check = (-1, "the host name could not be checked", ())
            raise self.explained(SSL.Error([("octtwisted", "", "host name not checked")]))

    def recv(self, bufsiz: int, flags: int | None = None) -> bytes:
        # A TLS 1.3 server's alerts about the client's certificate arrive
        # after the client's side of the handshake is done.
        try:
            return super().recv(bufsiz, flags)
        except SSL.Error as exc:
            if type(exc) is not SSL.Error:
                raise
            raise self.explained(exc) from exc

    def explained(self, exc: SSL.Error) -> TLSError:
        """
        ``exc`` (OpenSSL's error queue in ``args``) with the text that says
        what it was.
        """
        check = self.failed_check
        error: TLSError
        if check is not None:
            code, message, names = check
            error = certificate_error(self.address, code, message, self.host, names, TreqCertificateError)
        else:
            error = from_openssl_error(self.address, exc, TreqTLSError)
        assert isinstance(error, _KeepsQueue)
        error.text = Exception.__str__(error)
        error.args = exc.args
        return error


#: X509 errors OpenSSL finds after it has checked the host name (the
#: standard library's ``ssl`` has OpenSSL check it): on the server's own
#: certificate, a host name mismatch is reported instead, as there.
_AFTER_HOST_CHECK = {7, 9, 10}


def verify(connection: Any, certificate: Any, code: int, depth: int, ok: int) -> bool:
    """
    The run's context's verify callback: keep OpenSSL's verdict on the
    chain, and check the host name on the server's own certificate
    (``depth`` 0). The first failure is kept on the connection, for its
    error's text.
    """
    if not isinstance(connection, _CheckedConnection):
        return bool(ok)
    if connection.failed_check is not None:
        return False
    try:
        if depth == 0 and (ok or code in _AFTER_HOST_CHECK):
            connection.failed_check = _host_check(connection, certificate)
            connection.host_checked = connection.failed_check is None
        if connection.failed_check is None and not ok:
            connection.failed_check = (code, _openssl_words(code), ())
    except Exception as exc:  # noqa: BLE001 - an exception here would be lost in OpenSSL
        connection.failed_check = (-1, f"the certificate could not be checked: {exc}", ())
    return connection.failed_check is None


def _host_check(connection: _CheckedConnection, certificate: Any) -> tuple[int, str, tuple[str, ...]] | None:
    """
    ``None`` if ``certificate`` is for the connection's host (DNS name or
    IP address, as ``service_identity`` matches them), else why not.
    """
    patterns = extract_patterns(certificate)
    identity = IPAddress_ID(connection.host) if connection.is_ip else DNS_ID(connection.host)
    try:
        verify_service_identity(patterns, obligatory_ids=[identity], optional_ids=[])
    except (VerificationError, _NoIdentity):
        return (HOSTNAME_MISMATCH, "", _names(patterns))
    return None


def _names(patterns: Any) -> tuple[str, ...]:
    """
    The DNS names and IP addresses of ``service_identity``'s patterns.
    """
    names = []
    for pattern in patterns:
        if isinstance(pattern, DNSPattern):
            names.append(pattern.pattern.decode("ascii", "replace"))
        elif isinstance(pattern, IPAddressPattern):
            names.append(str(pattern.pattern))
    return tuple(names)


def _openssl_words(code: int) -> str:
    """
    pyOpenSSL's OpenSSL's words for an X509 verification code, for the
    codes :mod:`~octtwisted._http.fast.tlserrors` has none for (``""``
    when they cannot be had).
    """
    try:
        from OpenSSL._util import ffi, lib

        return str(ffi.string(lib.X509_verify_cert_error_string(code)).decode("ascii", "replace"))
    except Exception:  # noqa: BLE001 - a private API: only for words
        return ""


def _implements_creator(cls: type) -> type:
    from twisted.internet.interfaces import IOpenSSLClientConnectionCreator

    made: type = implementer(IOpenSSLClientConnectionCreator)(cls)
    return made


@_implements_creator
class ConnectionCreator:
    """
    The connections to one ``(host, port)``: SNI for a host name (not an
    IP address), the context's checks (none with ``tls_verify: false``),
    the host name checked by :func:`verify`.
    """

    def __init__(self, host: str, port: int, context: Any) -> None:
        self._host = host
        self._is_ip = _is_ip(host)
        self._sni = None if self._is_ip else host.encode("idna")
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._context = context
        self._checks = bool(context.get_verify_mode() & SSL.VERIFY_PEER)

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        connection = _CheckedConnection(self._context, None)
        connection.set_app_data(tlsProtocol)
        connection.address = self._address
        connection.host = self._host
        connection.is_ip = self._is_ip
        connection.checks = self._checks
        if self._sni is not None:
            connection.set_tlsext_host_name(self._sni)
        return connection


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
