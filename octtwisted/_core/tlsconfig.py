"""
The ``tls_*`` config keys: how both HTTP clients treat ``https://``
servers, checked when the config is loaded (files read, key matched to
certificate).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from octtwisted._core.checker import Checker, ConfigError


@attrs.frozen
class TLSOptions:
    """
    How both HTTP clients (``self.http`` and ``self.fast_http``) treat
    ``https://`` servers: the ``tls_*`` config keys, checked.

    :ivar verify: verify the server's certificate and host name
        (``tls_verify``, default true).
    :ivar ca: a PEM file of the CAs to trust instead of the system's
        (``tls_ca``).
    :ivar client_cert: a PEM client certificate for mutual TLS
        (``tls_client_cert``), with its key ``client_key``
        (``tls_client_key``; may be the same file).
    """

    verify: bool = True
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


def parse_tls_options(check: Checker, path: Path, warnings: list[str]) -> TLSOptions:
    """
    The ``tls_*`` keys, with their files read and checked now (a missing
    file, one that is not PEM, or a key that does not match its
    certificate is a config error, not an error at the first request).
    """
    import ssl

    verify = check.get("tls_verify", lambda v: isinstance(v, bool), "true or false", default=True)

    def file_key(key: str) -> Path | None:
        value = check.get(key, lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                          "a file name or null", default=None)
        if value is None:
            return None
        file: Path = (path.parent / value).resolve()
        if not file.is_file():
            raise ConfigError(f"{path}: key {key!r}: no such file {str(file)!r}")
        try:
            text = file.read_bytes()
        except OSError as e:
            raise ConfigError(f"{path}: key {key!r}: cannot read {str(file)!r}: {e.strerror or e}")
        if b"-----BEGIN " not in text:
            raise ConfigError(f"{path}: key {key!r}: {str(file)!r} is not a PEM file")
        return file

    ca = file_key("tls_ca")
    cert = file_key("tls_client_cert")
    key = file_key("tls_client_key")
    if key is not None and cert is None:
        raise ConfigError(f"{path}: key 'tls_client_key' is set but 'tls_client_cert' is not")
    if cert is not None and key is None:
        # A PEM file may hold the certificate and its key.
        if b"PRIVATE KEY-----" not in cert.read_bytes():
            raise ConfigError(f"{path}: key 'tls_client_cert' is set but 'tls_client_key' is not")
    if ca is not None and not verify:
        warnings.append(f"{path}: 'tls_ca' is ignored since 'tls_verify' is false")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, ValueError) as e:
            raise ConfigError(f"{path}: key 'tls_ca': {str(ca)!r} holds no usable CA certificate ({_ssl_reason(e)})")
    if cert is not None:
        try:
            context.load_cert_chain(str(cert), str(key) if key is not None else None)
        except (ssl.SSLError, ValueError) as e:
            reason = _ssl_reason(e)
            if "KEY_VALUES_MISMATCH" in str(e) or "values mismatch" in reason:
                raise ConfigError(f"{path}: keys 'tls_client_cert' and 'tls_client_key': the key does not match the certificate")
            raise ConfigError(f"{path}: keys 'tls_client_cert' and 'tls_client_key': cannot load the certificate and key ({reason})")
    if not verify:
        warnings.append(
            f"{path}: tls_verify is false: the certificates of https:// servers are NOT checked "
            "(anyone in the middle can read and change the traffic)"
        )
    return TLSOptions(verify=verify, ca=ca, client_cert=cert, client_key=key)


def _ssl_reason(error: Exception) -> str:
    reason = getattr(error, "reason", None)
    return str(reason).lower().replace("_", " ") if reason else " ".join(str(error).split())


