"""
Reading typed values out of a config's JSON object: :class:`ConfigError`,
the one-line error, and the checks every key goes through (numbers that
are finite and in range, integers that fit in 64 bits, short messages).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping

import attrs

#: The largest integer a config key may hold (a C ``int64``): a value past
#: it is refused at start instead of overflowing somewhere later.
MAX_INTEGER = 2**63 - 1


class ConfigError(Exception):
    """
    The configuration cannot be used; ``str()`` is one line for the user.
    """


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INTEGER


def is_number(value: object) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past the float range
        return False


def show_value(value: object) -> str:
    """``repr(value)`` for a message, cut when it is long."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


class Checker:
    """
    Reads typed values out of the raw JSON object, raising
    :class:`ConfigError` with the file and key named.
    """

    def __init__(
        self, path: Path, raw: Mapping[str, Any], misspelled: Mapping[str, str] | None = None
    ) -> None:
        self.path = path
        self.raw = raw
        #: key -> the key in the config that looks like it misspelled
        self.misspelled = misspelled or {}

    def fail(self, key: str, expected: str) -> ConfigError:
        value = self.raw[key]
        return ConfigError(
            f"{self.path}: key {key!r} must be {expected}, got {show_value(value)}"
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
                typo = self.misspelled.get(key)
                hint = f" (is {typo!r} a misspelling of it?)" if typo is not None else ""
                raise ConfigError(f"{self.path}: missing required key {key!r}{hint}")
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
            test: Callable[[Any], bool] = lambda v: is_number(v) and v > low
            expected = f"a number > {low:g}"
        else:
            test = lambda v: is_number(v) and v >= low
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


