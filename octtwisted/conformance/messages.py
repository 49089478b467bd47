"""
What a status and a result message must look like on the wire: their
keys and the types of their values, and what is wrong with one that does
not (the checks of ``status-keys``, ``announces-ready``, ``result-keys``).
"""

from __future__ import annotations

from typing import Any

STATUS_KEYS = frozenset({"turret", "status", "uuid", "rampup", "script", "cannons"})
RESULT_KEYS = frozenset({"turret_name", "elapsed", "epoch", "scriptrun_time", "error", "custom_timers"})


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def status_problems(status: dict[str, Any]) -> list[str]:
    """
    What is wrong with a status message, keys beyond the six aside.
    """
    problems = [f"no {key!r}" for key in sorted(STATUS_KEYS - set(status))]
    for key in ("cannons", "rampup"):
        if key in status and not is_number(status[key]):
            problems.append(f"{key} is {status[key]!r}, not a number")
    for key in ("turret", "script", "status", "uuid"):
        if key in status and not isinstance(status[key], str):
            problems.append(f"{key} is {status[key]!r}, not a string")
    uuid = status.get("uuid")
    if isinstance(uuid, str) and (not uuid or " " in uuid):
        problems.append(f"uuid {uuid!r} is empty or has a space")
    return problems


def result_problems(result: dict[str, Any]) -> list[str]:
    """
    What is wrong with a result message: its keys and their types.
    """
    keys = set(result)
    problems = [f"no {key!r}" for key in sorted(RESULT_KEYS - keys)]
    problems += [f"extra key {key!r}" for key in sorted(keys - RESULT_KEYS)]
    for key in ("elapsed", "epoch", "scriptrun_time"):
        if key in result and not is_number(result[key]):
            problems.append(f"{key} is {result[key]!r}, not a number")
    for key in ("turret_name", "error"):
        if key in result and not isinstance(result[key], str):
            problems.append(f"{key} is {result[key]!r}, not a string")
    timers = result.get("custom_timers")
    if "custom_timers" in result:
        if not isinstance(timers, dict):
            problems.append(f"custom_timers is {timers!r}, not an object")
        elif not all(is_number(v) for v in timers.values()):
            problems.append(f"custom_timers {timers!r} has a value that is not a number")
    return problems


def short(value: Any, chars: int = 100) -> str:
    """
    ``value``'s repr, cut to ``chars`` characters, for the details.
    """
    text = repr(value)
    return text if len(text) <= chars else text[: chars - 3] + "..."

