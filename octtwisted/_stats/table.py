"""
The plain-text table of a :class:`~octtwisted._stats.summary.Summary`
(:func:`format_table`), and the figures' formatting that the HTML report
shares (:func:`format_ms`, :func:`header_rows`, :func:`format_value`).
"""

from __future__ import annotations

import re
from typing import Sequence

from octtwisted._stats.faults import KIND_LABELS
from octtwisted._stats.histogram import TimerStats
from octtwisted._stats.summary import SCRIPTRUN_TIME, Summary

#: Longest error text the table shows.
ERROR_DISPLAY_WIDTH = 100

#: Longest timer name the table shows.
NAME_DISPLAY_WIDTH = 40

#: The columns of a timer, in the table and the HTML report.
TIMER_COLUMNS = ("count", "min", "mean", "p50", "p90", "p95", "p99", "max")

#: The share of planned starts dropped past which the summary says the
#: turret could not deliver the planned load.
UNDELIVERED_SHARE = 0.01


def format_table(summary: Summary) -> str:
    """
    A plain-text report for a terminal or a log: the run's figures, the
    timers in milliseconds, and the most frequent errors.
    """
    lines = ["Run summary", "==========="]
    lines += _format_header(summary)
    undelivered = undelivered_load(summary)
    if undelivered is not None:
        lines += ["", undelivered]
    lines.append("")
    lines += _format_timers(summary)
    lines += ["  " + line for line in timer_fault_lines(summary)]
    if summary.requests:
        lines.append("")
        lines += format_requests(summary)
    if summary.request_failures:
        lines.append("")
        lines += format_request_failures(summary)
    lines.append("")
    lines += _format_errors(summary)
    if summary.thresholds:
        lines.append("")
        lines += _format_thresholds(summary)
    return "\n".join(lines) + "\n"


def undelivered_load(summary: Summary) -> str | None:
    """
    The sentence that says the turret could not deliver the open model's
    planned load (more than :data:`UNDELIVERED_SHARE` of the planned
    starts dropped), or None.
    """
    starts = summary.starts
    if starts is None or not starts.planned or starts.dropped <= UNDELIVERED_SHARE * starts.planned:
        return None
    return (
        f"The turret could not deliver the planned load: {starts.dropped:,} of "
        f"{starts.planned:,} planned starts ({starts.dropped / starts.planned:.1%}) were "
        "dropped: no cannon was idle. Raise cannons (the most transactions in flight), "
        "or lower the arrival rate, or look at the target's response times."
    )


def format_ms(seconds: float) -> str:
    """
    Seconds as milliseconds, with about four significant digits.
    """
    ms = seconds * 1000.0
    if ms < 10:
        return f"{ms:.3f}"
    if ms < 100:
        return f"{ms:.2f}"
    if ms < 1000:
        return f"{ms:.1f}"
    return f"{ms:,.0f}"


def _format_duration(seconds: float) -> str:
    text = f"{seconds:,.1f} s"
    if seconds >= 60:
        whole = int(seconds)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        text += f" ({hours}:{minutes:02d}:{secs:02d})"
    return text


#: Characters a terminal or a page would act on rather than show: C0 and
#: C1 controls, DEL, and the bidirectional overrides and isolates (which
#: reorder what follows them); and lone surrogates (invalid UTF-8 decoded
#: with ``surrogateescape``), which no output can encode.
_INERT = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

#: Whitespace a one-line text shows as a space.
_SPACES = re.compile(r"\s+")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display_text(text: str, limit: int) -> str:
    """
    ``text`` (an error text, a timer name: what a script or its target
    chose) made inert for a terminal or a page, on one line, cut to
    ``limit`` characters: runs of white space (tabs, line breaks) become
    one space, every other control character, bidirectional override or
    lone surrogate is shown as its escape (``\\x1b``, ``\\u202e``,
    ``\\udcff``), and a longer text ends with ``...``. A 1 MB text costs
    no more than one of ``limit``.
    """
    cut = len(text) > 4 * limit
    text = _INERT.sub(_visible, _SPACES.sub(" ", text[: 4 * limit])).strip()
    if cut or len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _shorten(text: str, width: int) -> str:
    """
    ``text`` on one line, inert, cut to ``width`` characters
    (:func:`display_text`).
    """
    return display_text(text, width)


def header_rows(summary: Summary) -> list[tuple[str, str]]:
    """
    The run's figures as (label, value) rows: the text summary's header
    and the report's summary table.
    """
    errors = f"{summary.errors:,}"
    if summary.transactions:
        errors += f" ({summary.errors / summary.transactions:.2%})"
    waiting = _format_duration(summary.stop_wait)
    if summary.in_flight_at_stop:
        s = "" if summary.in_flight_at_stop == 1 else "s"
        waiting += f" for {summary.in_flight_at_stop:,} transaction{s} in flight at the stop"
    rows = [
        ("Transactions", f"{summary.transactions:,}"),
        ("Errors", errors),
        ("Duration", _format_duration(summary.duration)),
        ("Firing", _format_duration(summary.firing_time)),
        ("Stop wait", waiting),
        ("Transactions/s", f"{summary.transactions_per_second:,.2f}"),
        ("Cannons reached", f"{summary.cannons_reached:,} / {summary.cannons:,}"),
        ("Dropped results", f"{summary.dropped:,}"),
    ]
    if summary.processes > 1 or summary.processes_replaced:
        processes = f"{summary.processes}"
        if summary.processes_replaced:
            processes += f" ({summary.processes_replaced} replaced after dying)"
        rows.append(("Processes", processes))
    if summary.cpu_peak is not None:
        busy = "  (saturated: the turret, not the target)" if summary.cpu_peak > 0.9 else ""
        rows.append(("Turret CPU peak", f"{summary.cpu_peak:.0%} of a core{busy}"))
    starts = summary.starts
    if starts is not None:
        rows.append(("Planned starts", f"{starts.planned:,}"))
        rows.append(("Started", f"{starts.started:,}"))
        dropped = f"{starts.dropped:,}"
        if starts.planned:
            dropped += f" ({starts.dropped / starts.planned:.2%}): no idle cannon"
        rows.append(("Dropped starts", dropped))
        if starts.lag is not None:
            lag = starts.lag
            rows.append((
                "Start lag",
                f"p50 {format_ms(lag.p50)} ms, p99 {format_ms(lag.p99)} ms, max {format_ms(lag.max)} ms",
            ))
    return rows


def _format_header(summary: Summary) -> list[str]:
    rows = header_rows(summary)
    label_width = max(len(label) for label, _ in rows)
    return [f"  {label:<{label_width}}  {value}" for label, value in rows]


def _format_timers(summary: Summary) -> list[str]:
    timers: list[tuple[str, TimerStats]] = []
    if summary.scriptrun_time is not None:
        timers.append((SCRIPTRUN_TIME, summary.scriptrun_time))
    timers += summary.custom_timers.items()
    if not timers:
        return ["Timers: no transactions recorded."]

    header: tuple[str, ...] = ("timer (ms)",) + TIMER_COLUMNS
    rows = [header]
    for name, stats in timers:
        rows.append(
            (_shorten(name, NAME_DISPLAY_WIDTH), f"{stats.count:,}")
            + tuple(
                format_ms(getattr(stats, column)) for column in TIMER_COLUMNS[1:]
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = (f"{cell:>{width}}" for cell, width in zip(cells[1:], widths[1:]))
        return "  " + "  ".join((first, *rest))

    rule = "  " + "  ".join("-" * width for width in widths)
    return [line(header), rule] + [line(row) for row in rows[1:]]


def timer_fault_lines(summary: Summary) -> list[str]:
    """
    One line per custom timer that got values it could not record as they
    are (see :mod:`octtwisted._stats.faults`): the invalid ones, left out
    of its figures, then those above one hour, recorded as one hour. The
    HTML report shows the same lines.
    """
    lines = []
    for name, kinds in summary.invalid_timer_values.items():
        total = sum(kinds.values())
        detail = ", ".join(f"{KIND_LABELS[kind]}: {count:,}" for kind, count in kinds.items())
        lines.append(
            f'timer "{_shorten(name, NAME_DISPLAY_WIDTH)}": {total:,} invalid '
            f"value{'s' if total != 1 else ''} ({detail}), not in its figures"
        )
    for name, count in summary.timer_values_over_one_hour.items():
        lines.append(
            f'timer "{_shorten(name, NAME_DISPLAY_WIDTH)}": {count:,} '
            f"value{'s' if count != 1 else ''} above one hour, counted as one hour"
        )
    return lines


#: Most rows of the text's request failures table (``--summary-json`` has all).
REQUEST_FAILURE_ROWS = 20

#: Status codes a request row of the text shows (the most frequent).
STATUSES_SHOWN = 4


def _columns(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], left: frozenset[int]
) -> list[str]:
    """A table with its ``left`` columns aligned left, the others right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  " + "  ".join(
            f"{cell:<{width}}" if i in left else f"{cell:>{width}}"
            for i, (cell, width) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "  " + "  ".join("-" * width for width in widths)
    return [line(header), rule] + [line(row) for row in rows]


def format_requests(summary: Summary) -> list[str]:
    """
    The per-request table: one row per request name, busiest first (times
    in milliseconds; ``-`` where there is none).
    """
    header = ("method", "name", "requests", "fails", "req/s", "p50", "p90", "p95", "p99",
              "max", "avg bytes", "statuses")
    rows = []
    for row in summary.requests:
        time = row.time
        times = (
            ("-",) * 5 if time is None
            else tuple(format_ms(v) for v in (time.p50, time.p90, time.p95, time.p99, time.max))
        )
        statuses = " ".join(f"{code}:{count:,}" for code, count in row.statuses[:STATUSES_SHOWN])
        if len(row.statuses) > STATUSES_SHOWN:
            statuses += " ..."
        rows.append((
            _shorten(row.method, 12), _shorten(row.name, NAME_DISPLAY_WIDTH), f"{row.requests:,}",
            f"{row.failures:,}", f"{row.requests_per_second:,.2f}", *times,
            "-" if row.average_bytes is None else f"{row.average_bytes:,.0f}", statuses or "-",
        ))
    return ["Requests (times in ms)"] + _columns(header, rows, frozenset({0, 1, 11}))


def format_request_failures(summary: Summary) -> list[str]:
    """The request failures table: name, reason and count, most frequent first."""
    shown = summary.request_failures[:REQUEST_FAILURE_ROWS]
    title = "Request failures"
    if len(summary.request_failures) > len(shown):
        title += f" ({len(shown)} most frequent of {len(summary.request_failures)})"
    rows = [
        (f"{row.count:,}", _shorten(row.method, 12), _shorten(row.name, NAME_DISPLAY_WIDTH),
         _shorten(row.reason, ERROR_DISPLAY_WIDTH))
        for row in shown
    ]
    return [title] + _columns(("count", "method", "name", "reason"), rows, frozenset({1, 2, 3}))


def _format_errors(summary: Summary) -> list[str]:
    if not summary.top_errors:
        return ["Errors: none."]
    title = f"Top errors ({len(summary.top_errors)} most frequent)"
    counts = [f"{count:,}" for _, count in summary.top_errors]
    width = max(len("count"), *(len(count) for count in counts))
    lines = [title, f"  {'count':>{width}}  error", f"  {'-' * width}  {'-' * 5}"]
    for (error, _), count in zip(summary.top_errors, counts):
        lines.append(f"  {count:>{width}}  {_shorten(error, ERROR_DISPLAY_WIDTH)}")
    return lines


def format_value(metric: str, value: float | None, expression: str) -> str:
    """
    A threshold's measured value as the table shows it: timers in
    milliseconds, rates and counts as numbers.
    """
    if value is None:
        return "no values"
    stat = expression.strip().split()[0] if expression.strip() else ""
    if metric in ("transactions", "errors", "dropped_starts") or stat.startswith(
        ("count", "rate", "fail")
    ):
        if float(value).is_integer():
            return f"{int(value):,}"
        return f"{value:,.4g}"
    return f"{format_ms(value)} ms"


def _format_thresholds(summary: Summary) -> list[str]:
    failed = len(summary.thresholds_failed)
    verdict = "all passed" if not failed else f"{failed} failed"
    lines = [f"Thresholds ({len(summary.thresholds)}, {verdict})"]
    rows = [
        (
            "pass" if outcome.passed else "FAIL",
            _shorten(outcome.metric, NAME_DISPLAY_WIDTH),
            _shorten(outcome.expression, NAME_DISPLAY_WIDTH),
            format_value(outcome.metric, outcome.value, outcome.expression),
        )
        for outcome in summary.thresholds
    ]
    header = ("", "metric", "threshold", "measured")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        lines.append("  " + "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)).rstrip())
    for note in dict.fromkeys(o.note for o in summary.thresholds if o.note):
        lines.append(f"  {note}")
    lines += [f"  {note}" for note in threshold_fault_notes(summary)]
    return lines


def threshold_fault_notes(summary: Summary) -> list[str]:
    """
    For each timer judged by a threshold that got invalid values: that
    the thresholds judged its valid values only.
    """
    invalid = summary.invalid_timer_values
    notes = []
    for metric in dict.fromkeys(o.metric for o in summary.thresholds):
        if metric in invalid:
            total = sum(invalid[metric].values())
            notes.append(
                f'timer "{_shorten(metric, NAME_DISPLAY_WIDTH)}" judged on its valid values: '
                f"{total:,} invalid value{'s' if total != 1 else ''} left out"
            )
    return notes
