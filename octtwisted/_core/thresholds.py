"""
Pass/fail thresholds for a run: the config's ``thresholds`` key.

``{"scriptrun_time": ["p95 < 0.5"], "errors": ["rate < 0.01"],
"transactions": ["rate > 200"], "login": ["p90 < 0.3"]}``: each key names
a metric, each expression a statistic of it, a comparison and a number.
They are parsed when the config is read (:func:`parse_thresholds` raises
:class:`ThresholdError` on a bad one) and evaluated once, at the end of a
run (:func:`evaluate`).

Metrics and their statistics:

* ``transactions``: ``count``, ``rate`` (transactions per second).
* ``errors``: ``count``, ``rate`` (errors / transactions, 0 to 1).
* ``scriptrun_time`` and any custom timer by its name: ``min``, ``max``,
  ``mean`` (or ``avg``), ``med``, ``count`` and any percentile ``pN``
  (``p95``, ``p99.9``; k6's ``p(95)`` too), in seconds; a number may end
  with ``ms`` or ``s``.
* The open model's (``arrival_rate``) only: ``dropped_starts``:
  ``count``, ``rate`` (dropped / planned starts, 0 to 1), what k6 calls
  ``dropped_iterations``; ``start_lag``: the statistics of a timer, over
  the lag of every start (actual minus planned start).

* A request name (per-request statistics, see ``docs/requests.rst``):
  ``requests{name:GET /home}``, the name exactly as the summary shows it
  after ``name:`` (spaces kept, nothing trimmed, no quotes): the timer
  statistics over its requests' times, and ``count`` (requests),
  ``rate`` (requests per second), ``failures`` (failed requests) and
  ``fail_rate`` (failed / all its requests, 0 to 1).

A timer named by a threshold that the run never saw fails it, and its
outcome's ``note`` names the timers that were seen; so does a request
name never seen (the note names the request names seen).
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any, Callable, Mapping, Protocol

import attrs

TRANSACTIONS = "transactions"
ERRORS = "errors"
SCRIPTRUN_TIME = "scriptrun_time"
DROPPED_STARTS = "dropped_starts"
START_LAG = "start_lag"

#: The metrics of the open model (``arrival_rate``): a config error without it.
OPEN_MODEL_METRICS = (DROPPED_STARTS, START_LAG)

#: The metrics that are not a custom timer's name.
BUILTIN_METRICS = (TRANSACTIONS, ERRORS, SCRIPTRUN_TIME) + OPEN_MODEL_METRICS

#: The metrics whose statistics are ``count`` and ``rate``.
_COUNTERS = (TRANSACTIONS, ERRORS, DROPPED_STARTS)

_COUNT_STATS = ("count", "rate")
_REQUEST_STATS = ("rate", "failures", "fail_rate")

#: A request name's metric: ``requests{name:GET /home}``.
_REQUEST_METRIC = re.compile(r"^requests\{name:(?P<name>.+)\}$", re.DOTALL)


def request_name(metric: str) -> str | None:
    """
    The request name of a metric ``requests{name:NAME}``, else None.
    """
    match = _REQUEST_METRIC.match(metric)
    return None if match is None else match["name"]
_TIMER_STATS = ("min", "max", "mean", "avg", "med", "count")

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_EXPRESSION = re.compile(
    r"""^\s*
    (?P<stat>p\(\s*\d+(?:\.\d+)?\s*\)|p\d+(?:\.\d+)?|[a-z_]+)
    \s*(?P<op><=|>=|==|!=|<|>)\s*
    (?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
    \s*(?P<unit>ms|s)?\s*$""",
    re.VERBOSE,
)


class ThresholdError(ValueError):
    """
    A threshold cannot be used; ``str()`` is one line for the user.
    """


@attrs.frozen
class Threshold:
    """
    One parsed expression.

    :ivar metric: ``transactions``, ``errors``, ``scriptrun_time`` or a
        custom timer's name.
    :ivar stat: ``count``, ``rate``, ``min``, ``max``, ``mean``, ``med``,
        or ``p`` for a percentile.
    :ivar percentile: the percentile for ``stat == "p"``, else ``None``.
    :ivar op: the comparison, one of ``< <= > >= == !=``.
    :ivar limit: the number compared with (seconds for timer values).
    :ivar text: the expression as written.
    """

    metric: str
    stat: str
    percentile: float | None
    op: str
    limit: float
    text: str

    def holds_for(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.limit)


@attrs.frozen
class Outcome:
    """
    A threshold's verdict at the end of a run.

    :ivar metric: the metric's name.
    :ivar expression: the expression as written.
    :ivar value: what was measured (seconds for timers), ``None`` when the
        metric had no values (the threshold then fails).
    :ivar passed: whether the expression held.
    :ivar note: why there is no value, when it helps (a timer never
        seen: the timers that were), else ``""``.
    """

    metric: str
    expression: str
    value: float | None
    passed: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def parse_threshold(metric: str, text: object) -> Threshold:
    """
    Parse one expression of ``metric``.

    :raise ThresholdError: naming the expression and what is wrong.
    """
    if not isinstance(text, str):
        raise ThresholdError(
            f"threshold of {metric!r} must be a string such as 'p95 < 0.5', got {text!r}"
        )
    match = _EXPRESSION.match(text)
    if match is None:
        raise ThresholdError(
            f"threshold {text!r} of {metric!r} is not 'STAT OP NUMBER' (for instance 'p95 < 0.5')"
        )
    stat = match["stat"]
    percentile: float | None = None
    number = re.fullmatch(r"p\(?\s*(\d+(?:\.\d+)?)\s*\)?", stat)
    if number is not None:
        percentile = float(number[1])
        if not 0 < percentile <= 100:
            raise ThresholdError(
                f"threshold {text!r} of {metric!r}: a percentile must be in (0, 100]"
            )
        stat = "p"
    elif stat == "avg":
        stat = "mean"
    elif stat == "med":
        stat, percentile = "p", 50.0
    if metric in _COUNTERS:
        if stat not in _COUNT_STATS:
            raise ThresholdError(
                f"threshold {text!r} of {metric!r}: {metric} has 'count' and 'rate' only"
            )
        if match["unit"]:
            raise ThresholdError(f"threshold {text!r} of {metric!r}: no unit goes with a {stat}")
    elif request_name(metric) is not None:
        if stat not in ("p",) + _TIMER_STATS + _REQUEST_STATS:
            raise ThresholdError(
                f"threshold {text!r} of {metric!r}: unknown statistic {match['stat']!r} "
                "(a request name has min, max, mean, med, pN, count, rate, failures "
                "and fail_rate)"
            )
        if match["unit"] and stat in ("count",) + _REQUEST_STATS:
            raise ThresholdError(f"threshold {text!r} of {metric!r}: no unit goes with a {stat}")
    elif stat not in ("p",) + _TIMER_STATS:
        raise ThresholdError(
            f"threshold {text!r} of {metric!r}: unknown statistic {match['stat']!r} "
            "(a timer has min, max, mean, med, count and pN)"
        )
    limit = float(match["number"])
    if match["unit"] == "ms":
        limit /= 1000.0
    if not math.isfinite(limit):
        raise ThresholdError(f"threshold {text!r} of {metric!r}: the number must be finite")
    return Threshold(
        metric=metric, stat=stat, percentile=percentile, op=match["op"], limit=limit, text=text
    )


def parse_thresholds(raw: object) -> tuple[Threshold, ...]:
    """
    Parse the config's ``thresholds`` object: metric -> list of expressions
    (a single string is taken as a list of one).

    :raise ThresholdError: on the first problem.
    """
    if not isinstance(raw, Mapping):
        raise ThresholdError(
            f"'thresholds' must be an object of metric -> list of expressions, got {raw!r}"
        )
    parsed: list[Threshold] = []
    for metric, expressions in raw.items():
        if not isinstance(metric, str) or not metric.strip():
            raise ThresholdError(f"threshold metric names must be non-empty, got {metric!r}")
        if isinstance(expressions, str):
            expressions = [expressions]
        if not isinstance(expressions, list) or not expressions:
            raise ThresholdError(
                f"thresholds of {metric!r} must be a non-empty list of expressions, "
                f"got {expressions!r}"
            )
        parsed += [parse_threshold(metric, text) for text in expressions]
    return tuple(parsed)


class Measures(Protocol):
    """
    What thresholds are measured on (:class:`~octtwisted._stats.summary.RunStats`).
    """

    def timer_value(self, name: str, stat: str, percentile: float | None) -> float | None:
        """A timer's statistic in seconds (count for ``count``), None without values."""

    def timer_names(self) -> tuple[str, ...]:
        """The custom timers seen, sorted."""

    def request_value(self, name: str, stat: str, percentile: float | None) -> float | None:
        """A request name's statistic (see :func:`request_name`), None without requests."""

    def request_names(self) -> tuple[str, ...]:
        """The request names seen, sorted."""


class StartMeasures(Protocol):
    """
    The open model's starts (:class:`~octtwisted._stats.starts.StartStats`).
    """

    @property
    def planned(self) -> int: ...

    @property
    def dropped(self) -> int: ...

    def lag_value(self, stat: str, percentile: float | None) -> float | None:
        """A statistic of the start lag in seconds, None before any start."""


def measure(threshold: Threshold, measures: Measures, transactions: int, errors: int,
            duration: float, starts: StartMeasures | None = None) -> float | None:
    """
    The value a threshold compares, or ``None`` when there is none.

    :param duration: the seconds the run fired (``transactions`` ``rate``).
    """
    if threshold.metric in OPEN_MODEL_METRICS:
        if starts is None:
            return None
        if threshold.metric == START_LAG:
            return starts.lag_value(threshold.stat, threshold.percentile)
        if threshold.stat == "count":
            return float(starts.dropped)
        return starts.dropped / starts.planned if starts.planned else None
    name = request_name(threshold.metric)
    if name is not None:
        if threshold.stat == "rate":
            count = measures.request_value(name, "count", None)
            if count is None:
                return None
            return count / duration if duration > 0 else 0.0
        return measures.request_value(name, threshold.stat, threshold.percentile)
    if threshold.metric == TRANSACTIONS:
        if threshold.stat == "count":
            return float(transactions)
        return transactions / duration if duration > 0 else 0.0
    if threshold.metric == ERRORS:
        if threshold.stat == "count":
            return float(errors)
        return errors / transactions if transactions else None
    return measures.timer_value(threshold.metric, threshold.stat, threshold.percentile)


def evaluate(thresholds: tuple[Threshold, ...], measures: Measures, *, transactions: int,
             errors: int, duration: float,
             starts: StartMeasures | None = None) -> tuple[Outcome, ...]:
    """
    Every threshold's outcome, in the config's order. A metric without
    values (a timer that never ran, an error rate of no transactions)
    fails its thresholds; a timer never seen gets a note (see
    :func:`unseen_timer`).
    """
    outcomes = []
    for threshold in thresholds:
        value = measure(threshold, measures, transactions, errors, duration, starts)
        outcomes.append(
            Outcome(
                metric=threshold.metric,
                expression=threshold.text,
                value=value,
                passed=value is not None and threshold.holds_for(value),
                note=unseen_timer(threshold.metric, measures) if value is None else "",
            )
        )
    return tuple(outcomes)


def unseen_timer(metric: str, measures: Measures) -> str:
    """
    ``no timer named 'hom'; timers seen: home, login`` when ``metric`` is
    a custom timer's name that the run never saw, else ``""``.
    """
    if metric in BUILTIN_METRICS:
        return ""
    name = request_name(metric)
    if name is not None:
        names = measures.request_names()
        if name in names:
            return ""
        shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
        return f"no request named {name!r}; request names seen: {shown or 'none'}"
    seen = measures.timer_names()
    if metric in seen:
        return ""
    return f"no timer named {metric!r}; timers seen: {', '.join(seen) if seen else 'none'}"
