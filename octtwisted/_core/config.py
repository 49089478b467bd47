"""
The turret's configuration: the ``config.json`` that OCT writes for a turret.

:func:`load_config` reads and validates it completely, before anything
starts; every problem raises :class:`ConfigError` with one line that names
the file, the key and what is wrong.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping

import attrs

from octtwisted._stats.thresholds import Threshold, ThresholdError, parse_thresholds

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


class ConfigError(Exception):
    """
    The configuration cannot be used; ``str()`` is one line for the user.
    """


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
    blocking: bool | None = None
    #: pass/fail expressions evaluated at the end of each run
    thresholds: tuple[Threshold, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def order_address(self) -> str:
        """The ZeroMQ address of the HQ's PUB socket."""
        return f"tcp://{self.hq_address}:{self.hq_publisher}"

    @property
    def result_address(self) -> str:
        """The ZeroMQ address of the HQ's PULL socket."""
        return f"tcp://{self.hq_address}:{self.hq_rc}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


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
            f"{self.path}: key {key!r} must be {expected}, got {value!r}"
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
        return self.get(
            key,
            lambda v: _is_int(v) and v >= low and (high is None or v <= high),
            expected,
            **kw,
        )

    def number(self, key: str, low: float, *, strict: bool = False, **kw: Any) -> float:
        if strict:
            test: Callable[[Any], bool] = lambda v: _is_number(v) and v > low
            expected = f"a number > {low:g}"
        else:
            test = lambda v: _is_number(v) and v >= low
            expected = f"a number >= {low:g}"
        value = self.get(key, test, expected, **kw)
        return value if value is None else float(value)

    def text(self, key: str, **kw: Any) -> str:
        return self.get(
            key,
            lambda v: isinstance(v, str) and v.strip() != "",
            "a non-empty string",
            **kw,
        )


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
            hq_address=check.text("hq_address"),
            hq_publisher=check.integer("hq_publisher", 1, 65535),
            hq_rc=check.integer("hq_rc", 1, 65535),
        )
    script_path = (path.parent / script).resolve()
    if not script_path.is_file():
        raise ConfigError(f"{path}: script {script!r} not found at {script_path}")
    blocking = check.get(
        "blocking",
        lambda v: v is None or isinstance(v, bool),
        "true, false or null",
        default=None,
    )
    thresholds: tuple[Threshold, ...] = ()
    if "thresholds" in raw:
        try:
            thresholds = parse_thresholds(raw["thresholds"])
        except ThresholdError as e:
            raise ConfigError(f"{path}: key 'thresholds': {e}")
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
        linger=check.number("linger", 0, default=DEFAULT_LINGER),
        max_pending_results=check.integer(
            "max_pending_results", 1, default=DEFAULT_MAX_PENDING_RESULTS
        ),
        progress_interval=check.number(
            "progress_interval", 0, default=DEFAULT_PROGRESS_INTERVAL
        ),
        hq_lost_timeout=check.number(
            "hq_lost_timeout", 0, default=DEFAULT_HQ_LOST_TIMEOUT
        ),
        blocking=blocking,
        thresholds=thresholds,
        raw=raw,
        warnings=tuple(warnings),
        **hq,
    )


def load_config(path: str | Path, *, standalone: bool = False) -> TurretConfig:
    """
    Read and validate the config file at ``path``.

    :raise ConfigError: with a one-line message naming the problem.
    """
    path = Path(path).absolute()
    return parse_config(read_json_object(path), path, standalone=standalone)
