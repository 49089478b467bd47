"""
What both HTTP clients say when TLS fails, in one place: ``self.fast_http``
(the standard library's ``ssl``) and ``self.http`` (treq, on pyOpenSSL,
see :mod:`octtwisted._http.treqtls`) report the same failure in the same
words, and the turret's error result is that text (see
:func:`tls_failure`).

Each text is one line that says it was the certificate or the TLS layer,
why (OpenSSL's words), with whom and, where it helps, what to do::

    certificate verify failed: self-signed certificate (127.0.0.1:8443); see tls_ca and tls_verify in the turret config
    certificate verify failed: hostname mismatch: the certificate is for example.com, not 127.0.0.1 (127.0.0.1:8443); see tls_verify in the turret config
    certificate verify failed: certificate has expired (127.0.0.1:8443); see tls_verify in the turret config
    TLS error: tlsv13 alert certificate required (127.0.0.1:8443); the server requires a client certificate: set tls_client_cert and tls_client_key
"""

from __future__ import annotations

import ssl
from typing import Any, Sequence

from octtwisted._http.fast.errors import CertificateError, TLSError, one_line

#: OpenSSL's X509 verification codes (``X509_V_ERR_*``) in OpenSSL 3.0's
#: words: the same text from both clients, whichever OpenSSL each one is
#: built on (they may differ). Other codes get the words of the OpenSSL
#: that reported them.
_VERIFY_TEXTS = {
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
    22: "certificate chain too long",
    23: "certificate revoked",
    26: "unsupported certificate purpose",
    27: "certificate not trusted",
    28: "certificate rejected",
}

#: ``X509_V_ERR_HOSTNAME_MISMATCH`` and ``X509_V_ERR_IP_ADDRESS_MISMATCH``.
HOSTNAME_MISMATCH = 62
IP_ADDRESS_MISMATCH = 64
_MISMATCH = (HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH)

#: Codes that trusting the right CA (``tls_ca``) would cure.
_TRUST_CODES = {2, 18, 19, 20, 21, 27}
_TRUST_HINT = "see tls_ca and tls_verify in the turret config"
_VERIFY_HINT = "see tls_verify in the turret config"

#: At most this many of the certificate's names are listed.
_NAMES_SHOWN = 3

#: OpenSSL reasons (in words, lower case, alerts as :func:`tls_error`
#: names them) that get a hint.
_HINTS = {
    "tlsv13 alert certificate required": (
        "the server requires a client certificate: set tls_client_cert and tls_client_key"
    ),
    "tls alert handshake failure": "the server refused the handshake; it may require a client certificate",
    "tls alert unknown ca": "the server does not trust the client certificate",
    "tls alert bad certificate": "the server rejected the client certificate",
    "tls alert certificate expired": "the server says the client certificate has expired",
    "wrong version number": "is the server speaking TLS on this port?",
}

#: How OpenSSL's versions begin the reason for an alert the server sent:
#: 3.0 says ``sslv3 alert handshake failure`` or ``tlsv1 alert unknown
#: ca`` where 4.0 says ``tls alert ...``; both clients say the latter.
_ALERT_PREFIXES = ("sslv3 alert ", "tlsv1 alert ", "ssl/tls alert ")


def certificate_error(
    address: str | None,
    code: int,
    message: str = "",
    host: str = "",
    names: Sequence[str] = (),
    cls: type[CertificateError] = CertificateError,
) -> CertificateError:
    """
    The error for a certificate that did not verify.

    :param address: ``host:port`` of the server (``None``: not known).
    :param code: OpenSSL's X509 verification code.
    :param message: the verifying library's words for ``code`` (used
        for codes this module has no words of its own for).
    :param host: the host name (or IP address) that was checked.
    :param names: the DNS names and IP addresses the certificate is for
        (for a host name mismatch, when known).
    :param cls: the class to make (treq's is also an ``OpenSSL.SSL.Error``).
    """
    if code in _MISMATCH:
        if names:
            shown = list(names[:_NAMES_SHOWN])
            if len(names) > _NAMES_SHOWN:
                shown.append(f"{len(names) - _NAMES_SHOWN} more")
            listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
            reason = f"hostname mismatch: the certificate is for {listed}, not {host}"
        elif host:
            reason = f"hostname mismatch: the certificate is not for {host}"
        else:
            reason = "hostname mismatch"
        return cls(address, reason, _VERIFY_HINT)
    reason = _VERIFY_TEXTS.get(code) or one_line(message) or f"X509 verify error {code}"
    return cls(address, reason, _TRUST_HINT if code in _TRUST_CODES else _VERIFY_HINT)


def tls_error(address: str | None, reason: str, cls: type[TLSError] = TLSError) -> TLSError:
    """
    The error for any other failure of the TLS layer.

    :param reason: OpenSSL's reason, as a code (``TLSV13_ALERT_CERTIFICATE_REQUIRED``,
        the standard library's ``SSLError.reason``) or in words
        (``tlsv13 alert certificate required``, pyOpenSSL's); the same
        reason gives the same text whichever OpenSSL reported it.
    """
    text = one_line(reason)
    if text and text.replace("_", "").isalnum() and text.upper() == text:
        text = text.lower().replace("_", " ")
    for prefix in _ALERT_PREFIXES:
        if text.startswith(prefix):
            text = "tls alert " + text[len(prefix):]
    return cls(address, text or "unknown TLS error", _HINTS.get(text, ""))


def from_ssl_error(address: str | None, exc: ssl.SSLError, host: str = "", sslobj: Any = None) -> TLSError:
    """
    The error for what the standard library's ``ssl`` raised (``self.fast_http``).

    :param sslobj: the ``ssl.SSLObject`` whose handshake failed: for a
        host name mismatch, the names of its server's certificate are
        read from it.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code if isinstance(exc.verify_code, int) else 0
        names = _stdlib_names(sslobj) if code in _MISMATCH and sslobj is not None else ()
        return certificate_error(address, code, str(exc.verify_message or exc.reason or exc), host, names)
    return tls_error(address, exc.reason or str(exc))


def _stdlib_names(sslobj: Any) -> tuple[str, ...]:
    """
    The DNS names and IP addresses of the certificate ``sslobj``'s server
    sent, though it did not verify (``()`` when they cannot be read).
    """
    try:
        # Public (as DER) from Python 3.13; the _ssl method since 3.10.
        info = sslobj._sslobj.get_unverified_chain()[0].get_info()
        return tuple(value for kind, value in info.get("subjectAltName", ()) if kind in ("DNS", "IP Address"))
    except Exception:  # noqa: BLE001 - only for the error's text
        return ()


def from_openssl_error(address: str | None, exc: BaseException, cls: type[TLSError] = TLSError) -> TLSError:
    """
    The error for an ``OpenSSL.SSL.Error`` (``self.http``): its
    ``args[0]`` is OpenSSL's error queue, a list of ``(library, function,
    reason)``.
    """
    queue = exc.args[0] if exc.args else None
    if isinstance(queue, list):
        reasons = [str(entry[-1]) for entry in queue if isinstance(entry, tuple) and entry and entry[-1]]
        if reasons:
            return tls_error(address, "; ".join(dict.fromkeys(reasons)), cls)
    return tls_error(address, str(exc), cls)


def tls_failure(error: BaseException, _depth: int = 0) -> TLSError | None:
    """
    The TLS failure that ``error`` (what a transaction raised) is or
    wraps, or ``None`` when it is none: a :class:`TLSError` of either
    client, one inside Twisted's and treq's wrappers
    (``ResponseNeverReceived``, ``RequestTransmissionFailed``,
    ``ResponseFailed``, ``_WrappingFailure``: a list of failures in
    ``.reasons``), an ``ssl.SSLError``, an ``OpenSSL.SSL.Error`` or a
    ``service_identity`` host name mismatch. Wrappers are found by their
    ``reasons``, whatever their class.
    """
    if isinstance(error, TLSError):
        return error
    reasons = getattr(error, "reasons", None)
    if isinstance(reasons, (list, tuple)) and _depth < 4:
        for reason in reasons:
            value = getattr(reason, "value", reason)
            if isinstance(value, BaseException):
                found = tls_failure(value, _depth + 1)
                if found is not None:
                    return found
    if isinstance(error, ssl.SSLError):
        return from_ssl_error(None, error)
    kind = type(error)
    if kind.__module__ == "OpenSSL.SSL" and kind.__name__ == "Error":
        return from_openssl_error(None, error)
    if kind.__module__.startswith("service_identity") and kind.__name__ == "VerificationError":
        return certificate_error(None, HOSTNAME_MISMATCH, host=_mismatched_host(error))
    return None


def _mismatched_host(error: BaseException) -> str:
    """
    The host name (or IP address) of a ``service_identity``
    ``VerificationError``.
    """
    for mismatch in getattr(error, "errors", ()):
        identity = getattr(mismatch, "mismatched_id", None)
        value = getattr(identity, "hostname", None) or getattr(identity, "ip", None)
        if value is not None:
            return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return ""
