"""
The turret's configuration: the ``config.json`` that OCT writes for a turret.

:func:`load_config` reads and validates it completely, before anything
starts; every problem raises :class:`ConfigError` with one line that names
the file, the key and what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs

from octtwisted._core.checker import (
    Checker,
    ConfigError,
    is_number,
    read_json_object,
)
from octtwisted._core.hqaddress import ipv6 as _ipv6
from octtwisted._core.hqaddress import is_hq_host as _is_hq_host
from octtwisted._core.hqaddress import zmq_host as _zmq_host
from octtwisted._core.load import Load, LoadError, Stage, parse_load
from octtwisted._core.processes import Processes, ProcessesError, parse_processes
from octtwisted._core.httplimits import HTTPLimits, parse_http_limits
from octtwisted._core.tlsconfig import TLSOptions, parse_tls_options

__all__ = ["ConfigError", "TLSOptions", "TurretConfig", "load_config", "parse_config", "read_json_object"]
from octtwisted._core.spelling import meant
from octtwisted._core.thresholds import (
    BUILTIN_METRICS,
    OPEN_MODEL_METRICS,
    Threshold,
    ThresholdError,
    parse_thresholds,
)

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

#: The most cannons a config may ask for, unless its ``max_cannons`` says
#: more: a typo of 10,000,000 would otherwise take the machine's memory
#: (about 7 KiB a reactor cannon, more with its connection and its share of
#: the results in flight; see docs/configuration.rst).
DEFAULT_MAX_CANNONS = 100_000

#: The most cannons of a blocking script (one thread each) in one process,
#: unless ``max_blocking_cannons`` says more: a thread costs a stack (8 MiB
#: of address space, at least 16 KiB of memory), two memory maps of the
#: process's 65,530, and a pid of the system's 32,768 (the Linux defaults).
DEFAULT_MAX_BLOCKING_CANNONS = 10_000

#: Every key this turret reads (``canons``: the old spelling of
#: ``cannons``). Any other key is allowed (a script's own settings), but
#: one within an edit or two of these gets a warning at start.
TURRET_KEYS = REQUIRED_KEYS + (
    "canons",
    "stop_timeout",
    "transaction_timeout",
    "pacing",
    "heartbeat_interval",
    "linger",
    "max_pending_results",
    "progress_interval",
    "hq_lost_timeout",
    "hq_silence_timeout",
    "blocking",
    "processes",
    "arrival_rate",
    "stages",
    "tls_verify",
    "tls_ca",
    "tls_client_cert",
    "tls_client_key",
    "thresholds",
    "max_response_body",
    "max_response_head",
    "max_response_headers",
    "request_timers",
    "max_cannons",
    "max_blocking_cannons",
)


def misspelled_keys(raw: Mapping[str, Any]) -> dict[str, str]:
    """
    The config's unknown keys that look like misspelled turret keys:
    turret key -> the key found (the first one found, for each turret key
    that is missing).
    """
    found: dict[str, str] = {}
    for key in raw:
        if not isinstance(key, str) or key in TURRET_KEYS:
            continue
        target = meant(key, (k for k in TURRET_KEYS if k != "canons"))
        if target is not None and target not in raw and target not in found:
            found[target] = key
    return found

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
    #: the most cannons of a blocking script in one process (threads)
    max_blocking_cannons: int = DEFAULT_MAX_BLOCKING_CANNONS
    #: how many processes fire (``--processes`` wins over it); ``"auto"``:
    #: one per CPU this process may use
    processes: Processes = 1
    #: the load model: arrival rate and stages (see :mod:`octtwisted._core.load`)
    load: Load = Load()
    tls: TLSOptions = TLSOptions()
    #: how much of a response the HTTP clients read (``max_response_*``)
    http_limits: HTTPLimits = HTTPLimits()
    #: each result's custom_timers gets one timer per request name
    request_timers: bool = True
    #: pass/fail expressions evaluated at the end of each run
    thresholds: tuple[Threshold, ...] = ()
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


def parse_config(
    raw: dict[str, Any], path: Path, *, standalone: bool = False
) -> TurretConfig:
    """
    Validate a config object read from ``path``.

    :param standalone: the turret fires on its own, so the ``hq_*`` keys are
        neither needed nor used.
    """
    warnings: list[str] = []
    misspelled = misspelled_keys(raw)
    for target, key in misspelled.items():
        warnings.append(f"{path}: unknown key {key!r}: did you mean {target!r}?")
    if "cannons" not in raw and "canons" in raw:
        raw = dict(raw)
        raw["cannons"] = raw["canons"]
        warnings.append(
            f"{path}: key 'canons' is an old spelling of 'cannons'; "
            "please rename it"
        )
    check = Checker(path, raw, misspelled)
    name = check.text("name")
    cannons = check.integer("cannons", 1)
    max_cannons = check.integer("max_cannons", 1, default=DEFAULT_MAX_CANNONS)
    if cannons > max_cannons:
        raise ConfigError(
            f"{path}: key 'cannons' is {cannons}, over the bound of {max_cannons} (max_cannons): "
            "each cannon takes memory (about 7 KiB, and a connection with fast_http); "
            "set max_cannons to go past it"
        )
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
    if "\0" in script:
        raise ConfigError(f"{path}: key 'script' must be a file name, got {script!r} (a NUL character)")
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
    tls = parse_tls_options(check, path, warnings)
    http_limits = parse_http_limits(check)
    processes: Processes = 1
    if "processes" in raw:
        try:
            processes = parse_processes(raw["processes"])
        except ProcessesError as e:
            raise ConfigError(f"{path}: key 'processes' {e}")
    thresholds: tuple[Threshold, ...] = ()
    if "thresholds" in raw:
        try:
            thresholds = parse_thresholds(raw["thresholds"])
        except ThresholdError as e:
            raise ConfigError(f"{path}: key 'thresholds': {e}")
    warnings.extend(_threshold_warnings(thresholds, path))
    if load.arrival_rate is None:
        for threshold in thresholds:
            if threshold.metric in OPEN_MODEL_METRICS:
                raise ConfigError(
                    f"{path}: key 'thresholds': {threshold.metric!r} is a metric of the "
                    "open model, and this config has no 'arrival_rate' (the closed model "
                    "plans no starts)"
                )
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
            lambda v: v is None or (is_number(v) and v > 0),
            "a number > 0 or null",
            default=None,
        ),
        pacing=check.number("pacing", 0, default=0.0),
        heartbeat_interval=check.number(
            "heartbeat_interval", 0, strict=True, default=DEFAULT_HEARTBEAT_INTERVAL
        ),
        linger=float(check.get(  # ZeroMQ takes it in milliseconds, as a C int
            "linger",
            lambda v: is_number(v) and 0 <= v <= MAX_LINGER,
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
            lambda v: is_number(v) and 0 <= v <= MAX_HQ_SILENCE_TIMEOUT,
            f"a number from 0 to {MAX_HQ_SILENCE_TIMEOUT:g}",
            default=DEFAULT_HQ_SILENCE_TIMEOUT,
        )),
        blocking=blocking,
        max_blocking_cannons=check.integer(
            "max_blocking_cannons", 1, default=DEFAULT_MAX_BLOCKING_CANNONS
        ),
        processes=processes,
        load=load,
        tls=tls,
        http_limits=http_limits,
        request_timers=check.get(
            "request_timers", lambda v: isinstance(v, bool), "true or false", default=True
        ),
        thresholds=thresholds,
        raw=raw,
        warnings=tuple(warnings),
        **hq,
    )


def _threshold_warnings(thresholds: tuple[Threshold, ...], path: Path) -> list[str]:
    """
    A warning for each threshold metric that looks like a misspelled
    metric of the turret (it would be taken as a timer's name).
    """
    warnings = []
    for metric in dict.fromkeys(t.metric for t in thresholds):
        target = meant(metric, BUILTIN_METRICS)
        if target is not None:
            warnings.append(
                f"{path}: threshold metric {metric!r}: did you mean {target!r}? "
                "(taken as a timer's name)"
            )
    return warnings


def check_blocking_cannons(config: TurretConfig, blocking: bool, processes: int) -> None:
    """
    A blocking script's cannons are threads: refuse more in one process
    (the config's cannons shared by ``processes``) than
    ``max_blocking_cannons``.

    :raise ConfigError: naming both keys.
    """
    per_process = -(-config.cannons // max(1, processes))
    bound = config.max_blocking_cannons
    if blocking and per_process > bound:
        where = f"{per_process} in one process" if processes > 1 else str(per_process)
        raise ConfigError(
            f"{config.config_path}: key 'cannons' is {where} for a blocking script, over the bound of "
            f"{bound} threads (max_blocking_cannons): each takes a thread and its stack; "
            "use more processes, a non-blocking script, or set max_blocking_cannons to go past it"
        )


def load_config(path: str | Path, *, standalone: bool = False) -> TurretConfig:
    """
    Read and validate the config file at ``path``.

    :raise ConfigError: with a one-line message naming the problem.
    """
    path = Path(path).absolute()
    return parse_config(read_json_object(path), path, standalone=standalone)
