"""
The HTML report's per-request part (see :mod:`octtwisted._stats.report`):
the **Requests** table (one row per request name), the **Request
failures** table (name and reason), both sortable by any column, and the
data of the chart of the busiest names' p95 over time.

Names and reasons are text the target or the script controls. They are
shown by :func:`cut_html`, through
:func:`~octtwisted._stats.table.display_text` (the one place that makes
such a text inert, for the text summary too): control characters, lone surrogates (from bytes that were not
UTF-8) and bidirectional overrides are written as escapes
(``\\x00``, ``\\udcff``, ``\\u202e``), a text longer than its column is
cut (its full text, up to :data:`TITLE_LIMIT` characters, in a ``title``
attribute, for a tooltip), and everything is HTML-escaped. The chart's
legend gets the names as :func:`cut_text` leaves them, through the page's
JSON block (escaped there as every other string of it) and uPlot, which
writes them as text (``textContent``), never as markup.

Sorting is :data:`SORT_SCRIPT`: each column's header is a button (so the
keyboard can use it too); a first click sorts a number column largest
first and a text column A to Z, a second click reverses; rows with no
value (a time never measured) stay last.
"""

from __future__ import annotations

import html
import json
import math

from typing import Any, Sequence

from octtwisted._stats.requests import RequestFailureRow, RequestRow
from octtwisted._stats.summary import Summary
from octtwisted._stats.table import display_text, format_ms

#: Most characters of a request name a table cell shows.
NAME_WIDTH = 80

#: Most characters of a failure's reason a table cell shows.
REASON_WIDTH = 160

#: Most characters of a request name the chart's legend shows.
LEGEND_WIDTH = 60

#: Most characters of a text's ``title`` (its tooltip) when it is cut.
TITLE_LIMIT = 2000

#: Most request names the chart draws (the busiest).
CHART_NAMES = 5

#: Most status codes a cell lists (the others are counted in its title).
STATUSES_SHOWN = 6


#: The time columns: (header, TimerStats attribute).
_TIMES = (("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("max", "max"))


def cut_text(text: str, width: int) -> str:
    """
    ``text`` fit for display as plain text, at most ``width`` characters:
    :func:`~octtwisted._stats.table.display_text`, the one place that
    makes a text the target or the script chose inert.
    """
    return display_text(text, width)


def cut_html(text: str, width: int) -> str:
    """
    ``text`` as HTML: :func:`cut_text`, escaped; when it was cut, in a
    ``<span>`` whose ``title`` holds its first :data:`TITLE_LIMIT`
    characters.
    """
    shown = cut_text(text, width)
    if shown == text:
        return _e(shown)
    title = cut_text(text, TITLE_LIMIT)
    return f'<span title="{_e(title)}">{_e(shown)}</span>'


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _header(columns: Sequence[tuple[str, str]]) -> str:
    """
    A sortable table's header: each (label, kind) a button; ``kind`` is
    ``num`` or ``text``.
    """
    cells = "".join(
        f'<th aria-sort="none"><button type="button" data-col="{index}" data-kind="{kind}">'
        f"{_e(label)}</button></th>"
        for index, (label, kind) in enumerate(columns)
    )
    return f"<thead><tr>{cells}</tr></thead>"


def _num(shown: str, value: float | None) -> str:
    """A number cell: what it shows, and the value it sorts by."""
    # json.dumps: a number JavaScript's Number() reads (inf: "Infinity").
    sort = "" if value is None or math.isnan(value) else json.dumps(value)
    return f'<td class="n" data-v="{sort}">{_e(shown)}</td>'


def _statuses(row: RequestRow) -> str:
    listed = [f"{status} ({count:,})" for status, count in row.statuses]
    # Each code with its count on one line.
    shown = ", ".join(f"<span>{_e(entry)}</span>" for entry in listed[:STATUSES_SHOWN])
    if len(listed) > STATUSES_SHOWN:
        more = len(listed) - STATUSES_SHOWN
        return f'<td class="codes" title="{_e(", ".join(listed))}">{shown}, {more} more</td>'
    return f'<td class="codes">{shown if listed else "none"}</td>'


_REQUEST_COLUMNS = (
    ("method", "text"), ("name", "text"), ("requests", "num"), ("failures", "num"),
    ("req/s", "num"), ("p50", "num"), ("p90", "num"), ("p95", "num"), ("p99", "num"),
    ("max", "num"), ("avg bytes", "num"), ("status codes", "text"),
)


def _request_row(row: RequestRow) -> str:
    failures = f"{row.failures:,}"
    if row.requests:
        failures += f" ({row.failures / row.requests:.2%})"
    cells = [
        f"<td>{cut_html(row.method, 20)}</td>",
        f'<td class="name">{cut_html(row.name, NAME_WIDTH)}</td>',
        _num(f"{row.requests:,}", row.requests),
        _num(failures, row.failures),
        _num(f"{row.requests_per_second:,.2f}", row.requests_per_second),
    ]
    time = row.time
    for _, attribute in _TIMES:
        if time is None:
            cells.append(_num("n/a", None))
        else:
            value = float(getattr(time, attribute))
            cells.append(_num(format_ms(value), value))
    # No response whose size was measured: no size to average.
    if row.average_bytes is not None:
        cells.append(_num(f"{row.average_bytes:,.0f}", row.average_bytes))
    else:
        cells.append(_num("n/a", None))
    cells.append(_statuses(row))
    cls = ' class="failing"' if row.failures else ""
    return f"<tr{cls}>" + "".join(cells) + "</tr>"


def _failure_row(row: RequestFailureRow) -> str:
    return (
        f"<tr><td>{cut_html(row.method, 20)}</td>"
        f'<td class="name">{cut_html(row.name, NAME_WIDTH)}</td>'
        f'<td class="reason"><code>{cut_html(row.reason, REASON_WIDTH)}</code></td>'
        + _num(f"{row.count:,}", row.count)
        + "</tr>"
    )


def requests_html(summary: Summary, chart: str) -> str:
    """
    The report's Requests and Request failures sections, with ``chart``
    (the markup of the p95 chart, or ``""``) under the first; ``""`` when
    the run made no request.
    """
    if not summary.requests:
        return ""
    names = len(summary.requests)
    rows = "".join(_request_row(row) for row in summary.requests)
    requests = (
        f'<section id="requests"><h2>Requests ({names:,} name{"" if names == 1 else "s"})</h2>'
        '<p class="note">Every request made through the turret\'s HTTP clients, by name, busiest '
        "first; times in milliseconds. Click a column's header to sort by it (largest first, or "
        "A to Z); click again to reverse.</p>"
        f'<div class="wide"><table class="sortable requests" id="requests-table">'
        f"{_header(_REQUEST_COLUMNS)}<tbody>{rows}</tbody></table></div>{chart}</section>"
    )
    failures = summary.request_failures
    if not failures:
        return requests + '<section id="request-failures"><h2>Request failures</h2><p>No request failed.</p></section>'
    columns = (("method", "text"), ("name", "text"), ("reason", "text"), ("count", "num"))
    body = "".join(_failure_row(row) for row in failures)
    return requests + (
        f'<section id="request-failures"><h2>Request failures ({len(failures):,})</h2>'
        '<div class="wide"><table class="sortable request-failures" id="request-failures-table">'
        f"{_header(columns)}<tbody>{body}</tbody></table></div></section>"
    )


def requests_chart(summary: Summary, timeline: dict[str, Any]) -> dict[str, Any] | None:
    """
    The chart's data: ``names`` (cut for the legend) and ``p95``, one list
    of milliseconds (None where a point has no value) per name, for at most
    :data:`CHART_NAMES` names of the timeline's ``requests``, busiest
    first; None when there is nothing to draw (no requests, or a timeline
    without them).
    """
    series: dict[str, Any] = timeline.get("requests") or {}
    if not summary.requests or not series:
        return None
    rank = {row.name: index for index, row in enumerate(summary.requests)}
    names = sorted(series, key=lambda name: rank.get(name, len(rank)))[:CHART_NAMES]
    points = len(timeline.get("end", []))
    p95 = []
    for name in names:
        values = list(series[name].get("p95", []))[:points]
        values += [None] * (points - len(values))
        p95.append([
            None if v is None or math.isnan(v) else round(v * 1000.0, 3) for v in values
        ])
    return {"names": [cut_text(name, LEGEND_WIDTH) for name in names], "p95": p95}


#: The tables' style (added to the page's).
REQUESTS_STYLE = r"""
.wide{overflow-x:auto;max-width:100%}
table.sortable th,table.sortable td{padding:3px 7px}
table.sortable td.name{min-width:12em;max-width:22em;overflow-wrap:anywhere}
table.sortable td.reason{min-width:16em;max-width:40em}
table.sortable td.n{white-space:nowrap}
table.sortable td.codes{min-width:8em}
td.codes span{white-space:nowrap}
table.requests tr.failing td:nth-child(4){color:#b3261e}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;
cursor:pointer;text-align:inherit;white-space:nowrap}
th button:focus-visible{outline:2px solid #2f6fd0;outline-offset:2px}
th[aria-sort=ascending] button::after{content:" \25B2";font-size:.75em}
th[aria-sort=descending] button::after{content:" \25BC";font-size:.75em}
.u-legend .u-series th{white-space:normal;overflow-wrap:anywhere}
@media print{.wide{overflow:visible}th button::after{content:""}}
"""

#: The tables' sorting (its own ``<script>``: it works even if the charts
#: could not be drawn). It moves the rows, and writes no text.
SORT_SCRIPT = """
(function () {
  "use strict";
  // A number cell sorts by its data-v (empty: no value, always last); a
  // text cell by its text. Equal keys keep their current order.
  function sortRows(table, col, descending, numeric) {
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row, i) {
      var cell = row.cells[col], v = null;
      if (numeric) {
        var raw = cell.getAttribute("data-v");
        v = raw === null || raw === "" ? null : Number(raw);
      } else {
        v = cell.textContent;
      }
      return {row: row, i: i, v: v};
    });
    keyed.sort(function (a, b) {
      if (a.v === null || b.v === null) {
        return a.v === null ? (b.v === null ? a.i - b.i : 1) : -1;
      }
      var c = numeric ? (a.v < b.v ? -1 : a.v > b.v ? 1 : 0) : a.v.localeCompare(b.v);
      return (descending ? -c : c) || a.i - b.i;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }
  function wire(table) {
    var buttons = table.tHead.querySelectorAll("button[data-col]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function () {
        var th = button.parentNode, numeric = button.getAttribute("data-kind") === "num";
        var state = th.getAttribute("aria-sort");
        var descending = state === "ascending" ? true : state === "descending" ? false : numeric;
        Array.prototype.forEach.call(table.tHead.querySelectorAll("th"), function (other) {
          other.setAttribute("aria-sort", "none");
        });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortRows(table, Number(button.getAttribute("data-col")), descending, numeric);
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), wire);
})();
"""
