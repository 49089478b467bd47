"""
The turret's configuration: the ``config.json`` that OCT writes for a turret.

:func:`load_config` reads and validates it completely, before anything
starts; every problem raises :class:`ConfigError` with one line that names
the file, the key and what is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import attrs

from octtwisted._core.load import Load, LoadError, Stage, parse_load

#: The keys OCT's ``pack-turrets`` writes; all of them are required (the
#: ``hq_*`` ones only when the turret talks to an HQ).
HQ_KEYS = ("hq_address", "hq_publisher", "hq_rc")
REQUIRED_KEYS = ("name", "cannons", "rampup", "script") + HQ_KEYS

#: Optional keys of this turret, with their defaults.
DEFAULT_STOP_TIMEOUT = 10.0
DEFAULT_HEARTBEAT_INTERVAL = 2.0
DEFAULT_LINGER = 2.0
DEFAULT_MAX_PENDING_RESULTS = 20_000
DEFAULT_PROGRESS_INTERVAL = 5.0
DEFAULT_HQ_LOST_TIMEOUT = 60.0
DEFAULT_HQ_SILENCE_TIMEOUT = 20.0
#: The longest ``hq_silence_timeout`` (ZeroMQ's heartbeat TTL tops out at
#: 6553.5 s).
MAX_HQ_SILENCE_TIMEOUT = 3600.0

#: The longest ``linger``, in seconds (a day).
MAX_LINGER = 86_400.0

#: The largest integer a config key may hold (a C ``int64``): a value past
#: it is refused at start instead of overflowing somewhere later.
MAX_INTEGER = 2**63 - 1


class ConfigError(Exception):
    """
    The configuration cannot be used; ``str()`` is one line for the user.
    """


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


@attrs.frozen
class TurretConfig:
    """
    A validated turret configuration.

    ``raw`` is the whole JSON object as read (unknown keys included, since
    OCT adds its own); it is what test scripts receive as ``config``.
    """

    name: str
    cannons: int
    rampup: float
    script: str
    script_path: Path
    config_path: Path
    hq_address: str | None = None
    hq_publisher: int | None = None
    hq_rc: int | None = None
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    transaction_timeout: float | None = None
    pacing: float = 0.0
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    linger: float = DEFAULT_LINGER
    max_pending_results: int = DEFAULT_MAX_PENDING_RESULTS
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL
    hq_lost_timeout: float = DEFAULT_HQ_LOST_TIMEOUT
    hq_silence_timeout: float = DEFAULT_HQ_SILENCE_TIMEOUT
    blocking: bool | None = None
    #: the load model: arrival rate and stages (see :mod:`octtwisted._core.load`)
    load: Load = Load()
    tls: TLSOptions = TLSOptions()
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def arrival_rate(self) -> float | None:
        return self.load.arrival_rate

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self.load.stages

    @property
    def order_address(self) -> str:
        """The ZeroMQ address of the HQ's PUB socket."""
        return f"tcp://{_zmq_host(self.hq_address)}:{self.hq_publisher}"

    @property
    def result_address(self) -> str:
        """The ZeroMQ address of the HQ's PULL socket."""
        return f"tcp://{_zmq_host(self.hq_address)}:{self.hq_rc}"

    @property
    def hq_ipv6(self) -> bool:
        """Whether ``hq_address`` is an IPv6 address (the sockets need IPv6)."""
        return _ipv6(self.hq_address) is not None


#: A host name as ZeroMQ takes it: labels of letters, digits, ``-`` and
#: ``_``, separated by dots.
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?")


def _ipv6(host: str | None) -> ipaddress.IPv6Address | None:
    """``host`` as an IPv6 address (brackets allowed), or ``None``."""
    if host is None:
        return None
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def _zmq_host(host: str | None) -> str:
    """The host part of a ``tcp://`` address: IPv6 goes in brackets."""
    address = _ipv6(host)
    return f"[{address}]" if address is not None else str(host)


def _is_hq_host(value: object) -> bool:
    """
    Whether ``value`` is a host name, an IPv4 address or an IPv6 address
    (maybe in brackets), with nothing around it: no scheme, no port, no
    spaces.
    """
    if not isinstance(value, str) or len(value) > 253:
        return False
    if _ipv6(value) is not None:
        return True
    if _HOST_NAME.fullmatch(value) is None:
        return False
    if all(label.isdigit() for label in value.rstrip(".").split(".")):
        try:  # all digits: it must be an IPv4 address
            ipaddress.IPv4Address(value)
        except ValueError:
            return False
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INTEGER


def _is_number(value: object) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past the float range
        return False


def _show(value: object) -> str:
    """``repr(value)`` for a message, cut when it is long."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


class _Checker:
    """
    Reads typed values out of the raw JSON object, raising
    :class:`ConfigError` with the file and key named.
    """

    def __init__(self, path: Path, raw: Mapping[str, Any]) -> None:
        self.path = path
        self.raw = raw

    def fail(self, key: str, expected: str) -> ConfigError:
        value = self.raw[key]
        return ConfigError(
            f"{self.path}: key {key!r} must be {expected}, got {_show(value)}"
        )

    def get(
        self,
        key: str,
        test: Callable[[Any], bool],
        expected: str,
        default: Any = attrs.NOTHING,
    ) -> Any:
        if key not in self.raw:
            if default is attrs.NOTHING:
                raise ConfigError(f"{self.path}: missing required key {key!r}")
            return default
        value = self.raw[key]
        if not test(value):
            raise self.fail(key, expected)
        return value

    def integer(self, key: str, low: int, high: int | None = None, **kw: Any) -> int:
        expected = (
            f"an integer >= {low}"
            if high is None
            else f"an integer from {low} to {high}"
        )
        value: int = self.get(
            key,
            lambda v: _is_int(v) and v >= low and (high is None or v <= high),
            expected,
            **kw,
        )
        return value

    def number(self, key: str, low: float, *, strict: bool = False, **kw: Any) -> float:
        if strict:
            test: Callable[[Any], bool] = lambda v: _is_number(v) and v > low
            expected = f"a number > {low:g}"
        else:
            test = lambda v: _is_number(v) and v >= low
            expected = f"a number >= {low:g}"
        return float(self.get(key, test, expected, **kw))

    def text(self, key: str, **kw: Any) -> str:
        value: str = self.get(
            key,
            lambda v: isinstance(v, str) and v.strip() != "",
            "a non-empty string",
            **kw,
        )
        return value


def read_json_object(path: Path) -> dict[str, Any]:
    """
    Read a JSON object from ``path``, or raise :class:`ConfigError`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror or e}")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        )
    except ValueError as e:  # say, an integer past Python's digit limit
        raise ConfigError(f"{path}: config file cannot be read: {' '.join(str(e).split())[:200]}")
    except RecursionError:
        raise ConfigError(f"{path}: config file has JSON nested too deeply to read")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: config must be a JSON object, got {type(raw).__name__}"
        )
    return raw


def parse_config(
    raw: dict[str, Any], path: Path, *, standalone: bool = False
) -> TurretConfig:
    """
    Validate a config object read from ``path``.

    :param standalone: the turret fires on its own, so the ``hq_*`` keys are
        neither needed nor used.
    """
    warnings: list[str] = []
    if "cannons" not in raw and "canons" in raw:
        raw = dict(raw)
        raw["cannons"] = raw["canons"]
        warnings.append(
            f"{path}: key 'canons' is an old spelling of 'cannons'; "
            "please rename it"
        )
    check = _Checker(path, raw)
    name = check.text("name")
    cannons = check.integer("cannons", 1)
    rampup = check.number("rampup", 0)
    script = check.text("script")
    hq: dict[str, Any] = {}
    if not standalone:
        hq = dict(
            hq_address=check.get(
                "hq_address",
                _is_hq_host,
                "a host name, an IPv4 address or an IPv6 address, alone "
                "(no tcp://, no port, no spaces)",
            ),
            hq_publisher=check.integer("hq_publisher", 1, 65535),
            hq_rc=check.integer("hq_rc", 1, 65535),
        )
    script_path = (path.parent / script).resolve()
    if not script_path.is_file():
        raise ConfigError(f"{path}: script {script!r} not found at {script_path}")
    try:
        load = parse_load(raw, cannons, rampup)
    except LoadError as e:
        raise ConfigError(f"{path}: {e}")
    warnings.extend(f"{path}: {warning}" for warning in load.warnings)
    blocking = check.get(
        "blocking",
        lambda v: v is None or isinstance(v, bool),
        "true, false or null",
        default=None,
    )
    tls = _tls_options(check, path, warnings)
    return TurretConfig(
        name=name,
        cannons=cannons,
        rampup=rampup,
        script=script,
        script_path=script_path,
        config_path=path,
        stop_timeout=check.number(
            "stop_timeout", 0, strict=True, default=DEFAULT_STOP_TIMEOUT
        ),
        transaction_timeout=check.get(
            "transaction_timeout",
            lambda v: v is None or (_is_number(v) and v > 0),
            "a number > 0 or null",
            default=None,
        ),
        pacing=check.number("pacing", 0, default=0.0),
        heartbeat_interval=check.number(
            "heartbeat_interval", 0, strict=True, default=DEFAULT_HEARTBEAT_INTERVAL
        ),
        linger=float(check.get(  # ZeroMQ takes it in milliseconds, as a C int
            "linger",
            lambda v: _is_number(v) and 0 <= v <= MAX_LINGER,
            f"a number from 0 to {MAX_LINGER:g}",
            default=DEFAULT_LINGER,
        )),
        max_pending_results=check.integer(
            "max_pending_results", 1, default=DEFAULT_MAX_PENDING_RESULTS
        ),
        progress_interval=check.number(
            "progress_interval", 0, default=DEFAULT_PROGRESS_INTERVAL
        ),
        hq_lost_timeout=check.number(
            "hq_lost_timeout", 0, default=DEFAULT_HQ_LOST_TIMEOUT
        ),
        hq_silence_timeout=float(check.get(
            "hq_silence_timeout",
            lambda v: _is_number(v) and 0 <= v <= MAX_HQ_SILENCE_TIMEOUT,
            f"a number from 0 to {MAX_HQ_SILENCE_TIMEOUT:g}",
            default=DEFAULT_HQ_SILENCE_TIMEOUT,
        )),
        blocking=blocking,
        load=load,
        tls=tls,
        raw=raw,
        warnings=tuple(warnings),
        **hq,
    )


def _tls_options(check: _Checker, path: Path, warnings: list[str]) -> TLSOptions:
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


def load_config(path: str | Path, *, standalone: bool = False) -> TurretConfig:
    """
    Read and validate the config file at ``path``.

    :raise ConfigError: with a one-line message naming the problem.
    """
    path = Path(path).absolute()
    return parse_config(read_json_object(path), path, standalone=standalone)
