"""
``--report PATH.html``: one self-contained HTML page per run.

The page holds everything inline: the vendored uPlot chart library
(``vendor/uPlot.iife.min.js``, MIT, see ``vendor/README``), its style, the
page's own style and script, and the run's data as a JSON block. A Content
Security Policy forbids any load from elsewhere, so it opens offline and
makes no network request, and lets only the page's own scripts run (by
their hashes).

Every string that comes from the user or the system under test (script
name, turret name, timer names, error texts, threshold expressions) is
written by :func:`html.escape` into the tables and headings, on one line,
control characters shown as escapes and cut to 1,000 characters. The JSON
block holds numbers, and the busiest requests' names for their chart's
legend (``<``, ``>``, ``&`` escaped), which uPlot writes as text, never
markup. The requests' tables and sorting:
:mod:`octtwisted._stats.report_requests`.

In the open model (the timeline has ``starts``) the page has two more
charts: the planned, started and dropped starts per second, and the start
lag's p50, p99 and max; in the closed model they are not there.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math
from importlib import resources
from typing import Any, Iterable, Sequence

import attrs

from octtwisted._stats.histogram import TimerStats
from octtwisted._stats.report_requests import REQUESTS_STYLE, SORT_SCRIPT, requests_chart, requests_html
from octtwisted._stats.summary import SCRIPTRUN_TIME, Summary
from octtwisted._stats.table import (
    TIMER_COLUMNS,
    display_text,
    format_ms,
    format_value,
    header_rows,
    threshold_fault_notes,
    timer_fault_lines,
)

#: The version of the vendored uPlot.
UPLOT_VERSION = "1.6.32"


#: The page's Content Security Policy; ``{scripts}``: the hashes of its
#: own scripts, the only ones it lets run.
_CSP = (
    "default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; "
    "img-src data:; font-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'"
)


def script_hash(source: str) -> str:
    """
    The CSP source that lets the inline script ``source`` (the text
    between its tags) run: ``'sha256-...'``.
    """
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@functools.cache
def _csp() -> str:
    """
    The policy: the page's own three scripts (uPlot, the charts, the
    sorting) may run, and nothing else. A script that markup in a name or
    an error text would sneak into the page (were it not escaped) is
    refused by the browser: escaping is not the only defence.
    """
    scripts = (_asset("uPlot.iife.min.js"), _SCRIPT, SORT_SCRIPT)
    return _CSP.format(scripts=" ".join(script_hash(source) for source in scripts))


@attrs.frozen
class ReportData:
    """
    What a report shows.

    :ivar title: the page's title (plain text).
    :ivar settings: (label, value) rows of the run's settings (plain text).
    :ivar summary: the run's summary, thresholds included.
    :ivar timeline: :meth:`~octtwisted._stats.timeline.Timeline.to_dict`.
    :ivar top_errors: the most frequent error texts with their counts.
    :ivar cpu: the turret's CPU samples
        (:meth:`~octtwisted._stats.cpu.CPUSampler.to_dict`), or None when
        it was not measured.
    """

    title: str
    settings: tuple[tuple[str, str], ...]
    summary: Summary
    timeline: dict[str, Any]
    top_errors: tuple[tuple[str, int], ...]
    cpu: dict[str, Any] | None = None


def _asset(name: str) -> str:
    return resources.files("octtwisted._stats").joinpath("vendor", name).read_text("utf-8")


#: Longest text the page shows in one place (a timer name, an error text,
#: a setting): longer ones are cut.
TEXT_LIMIT = 1000


def _e(text: object) -> str:
    """
    Any text of the page: inert (control characters shown as escapes, see
    :func:`~octtwisted._stats.table.display_text`), cut to
    :data:`TEXT_LIMIT`, escaped for HTML.
    """
    return html.escape(display_text(str(text), TEXT_LIMIT), quote=True)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """
    A table of plain-text cells (escaped here).
    """
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _timer_row(name: str, stats: TimerStats) -> list[str]:
    return [name, f"{stats.count:,}"] + [format_ms(getattr(stats, c)) for c in TIMER_COLUMNS[1:]]


def _timers_table(timers: Sequence[tuple[str, TimerStats]]) -> str:
    return _table(("timer (ms)",) + TIMER_COLUMNS, (_timer_row(n, s) for n, s in timers), "num")


def _series_ms(values: list[float | None]) -> list[float | None]:
    return [None if v is None or math.isnan(v) else round(v * 1000.0, 3) for v in values]


def _chart_data(data: ReportData, timer_names: list[str]) -> str:
    timeline = data.timeline
    timers = timeline.get("timers", {})
    empty = [None] * len(timeline.get("end", []))
    series = []
    for name in timer_names:
        columns = timers.get(name, {})
        series.append([_series_ms(columns.get(p, empty)) for p in ("p50", "p95", "p99")])
    payload = {
        "x": [round(v, 3) for v in timeline.get("end", [])],
        "tps": [round(v, 2) for v in timeline.get("transactions_per_second", [])],
        "eps": [round(v, 2) for v in timeline.get("errors_per_second", [])],
        "active": timeline.get("active", []),
        "timers": series,
        "partial": _last_partial(timeline),
    }
    cpu = data.cpu
    if cpu is not None:
        payload["cpu"] = {
            "x": [round(v, 3) for v in cpu["end"]],
            "busiest": [round(v * 100.0, 1) for v in cpu["busiest"]],
        }
    requests = requests_chart(data.summary, timeline)
    if requests is not None:
        payload["requests"] = requests
    starts = timeline.get("starts")
    if starts is not None:
        lag = starts["lag"]
        payload["starts"] = {
            "dur": [round(v, 3) for v in timeline.get("duration", [])],
            "planned": starts["planned"],
            "started": starts["started"],
            "dropped": starts["dropped"],
            "lag": [_series_ms(lag[p]) for p in ("p50", "p99", "max")],
        }
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _last_partial(timeline: dict[str, Any]) -> bool:
    """
    The last point spans less than the others (the run ended within it):
    its rates and counts are those of a fraction of a second, so the
    charts leave it out (the data keeps it, so the counts add up).
    """
    durations = timeline.get("duration", [])
    return len(durations) > 1 and durations[-1] < 0.9 * max(durations[:-1])


def _thresholds(summary: Summary) -> str:
    if not summary.thresholds:
        return ""
    failed = len(summary.thresholds_failed)
    verdict = "all passed" if not failed else f"{failed} of {len(summary.thresholds)} failed"
    cls = "pass" if not failed else "fail"
    rows = "".join(
        f'<tr class="{"pass" if o.passed else "fail"}"><td>{"pass" if o.passed else "FAIL"}</td>'
        f"<td>{_e(o.metric)}</td><td><code>{_e(o.expression)}</code></td>"
        f"<td>{_e(format_value(o.metric, o.value, o.expression))}</td></tr>"
        for o in summary.thresholds
    )
    return (
        f'<section id="thresholds"><h2>Thresholds: <span class="{cls}">{_e(verdict)}</span></h2>'
        "<table><thead><tr><th></th><th>metric</th><th>threshold</th><th>measured</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
        + "".join(f'<p class="note">{_e(note)}</p>' for note in threshold_fault_notes(summary))
        + "</section>"
    )


def _errors(data: ReportData) -> str:
    if not data.top_errors:
        return '<section id="errors"><h2>Errors</h2><p>No errors.</p></section>'
    total = data.summary.errors or 1
    rows = "".join(
        f'<tr><td class="n">{count:,}</td><td class="n">{count / total:.1%}</td>'
        f"<td><code>{_e(error)}</code></td></tr>"
        for error, count in data.top_errors
    )
    return (
        f'<section id="errors"><h2>Most frequent errors ({len(data.top_errors)})</h2>'
        '<table class="errors"><thead><tr><th>count</th><th>share</th><th>error</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></section>"
    )


def _chart(kind: str, title: str, index: int = 0) -> str:
    return (
        f'<figure class="chart-box"><figcaption>{_e(title)}</figcaption>'
        f'<div class="chart" data-chart="{kind}" data-index="{index}"></div></figure>'
    )


def _run_charts(data: ReportData) -> str:
    """
    The run's charts; in the open model (the timeline has starts) also the
    starts and the start lag.
    """
    active = (
        "Active cannons: the most transactions in flight at once in each second"
        if "starts" in data.timeline
        else "Active cannons: the most at once in each second"
    )
    charts = (
        _chart("throughput", "Transactions and errors per second")
        + _chart("timer", "scriptrun_time: p50, p95, p99 (ms)", 0)
        + _chart("active", active)
    )
    if data.cpu is not None:
        charts += _chart("cpu", "Turret CPU: the busiest process (% of one core)")
    if "starts" in data.timeline:
        charts += _chart("starts", "Starts per second: planned, started, dropped")
        charts += _chart("lag", "Start lag: p50, p99, max (ms)")
    return charts


def render(data: ReportData) -> str:
    """
    The report as one HTML document.
    """
    summary = data.summary
    timers: list[tuple[str, TimerStats]] = []
    if summary.scriptrun_time is not None:
        timers.append((SCRIPTRUN_TIME, summary.scriptrun_time))
    timers += list(summary.custom_timers.items())
    names = [SCRIPTRUN_TIME] + sorted(
        set(summary.custom_timers) | set(data.timeline.get("timers", {})) - {SCRIPTRUN_TIME}
    )
    custom = []
    for index, name in enumerate(names[1:], start=1):
        # Its figures are in the timers table: here only its chart.
        row = "" if name in summary.custom_timers else "<p>No values.</p>"
        custom.append(
            f'<section class="timer"><h3>Timer <code>{_e(name)}</code></h3>{row}'
            f"{_chart('timer', f'{name}: p50, p95, p99 (ms)', index)}</section>"
        )
    custom_html = (
        '<section id="custom-timers"><h2>Custom timers</h2>' + "".join(custom) + "</section>"
        if custom
        else ""
    )
    timers_html = _timers_table(timers) if timers else "<p>No transactions recorded.</p>"
    timers_html += "".join(  # values a script got wrong: said, never shown as times
        f'<p class="note timer-faults"><strong>{_e(line)}</strong></p>'
        for line in timer_fault_lines(summary)
    )
    has_chart = requests_chart(summary, data.timeline) is not None
    requests = _chart("requests", "p95 of the busiest requests over time (ms)") if has_chart else ""
    return _PAGE.format(
        csp=_csp(),
        title=_e(data.title),
        uplot_css=_asset("uPlot.min.css"),
        style=_STYLE + REQUESTS_STYLE,
        settings=_table(("setting", "value"), data.settings, "kv"),
        summary=_table(("figure", "value"), header_rows(summary), "kv"),
        timers=timers_html,
        thresholds=_thresholds(summary),
        requests=requests_html(summary, requests),
        charts=_run_charts(data),
        custom=custom_html,
        errors=_errors(data),
        data=_chart_data(data, names),
        uplot_js=_asset("uPlot.iife.min.js"),
        script=_SCRIPT,
        sort_script=SORT_SCRIPT,
        uplot_version=UPLOT_VERSION,
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{uplot_css}</style>
<style>{style}</style>
</head><body><main>
<h1>{title}</h1>
{thresholds}
<div class="two"><section id="settings"><h2>Settings</h2>{settings}</section>
<section id="summary"><h2>Summary</h2>{summary}</section></div>
<section id="timers"><h2>Timers</h2>{timers}</section>
{requests}
<section id="charts"><h2>Over time</h2>
<p class="note">One point per second (the last, partial second left out). Away from the cursor,
a legend shows the last point's values; hover a chart to read the others.</p>{charts}</section>
{custom}
{errors}
<footer>Made by oct-twisted with uPlot {uplot_version} (MIT licence).</footer>
</main>
<script type="application/json" id="report-data">{data}</script>
<script>{uplot_js}</script>
<script>{script}</script>
<script>{sort_script}</script>
</body></html>
"""

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f6f7f9;margin:0}
main{max-width:1180px;margin:0 auto;padding:16px 24px 40px}
h1{font-size:1.5em;margin:.3em 0 .6em;overflow-wrap:anywhere}
h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid #d5d9e0;padding-bottom:.2em}
h3{font-size:1em;margin:1em 0 .3em;overflow-wrap:anywhere}
section{margin-bottom:8px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:0 32px}
@media (max-width:800px){.two{grid-template-columns:1fr}}
table{border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums;max-width:100%}
th,td{padding:3px 10px;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}
table.num td:not(:first-child),table.num th:not(:first-child),td.n{text-align:right}
table.kv td:first-child{color:#4a5263}
td code,h3 code{overflow-wrap:anywhere;white-space:pre-wrap;font-size:.92em}
table.errors td:last-child{max-width:760px}
.pass{color:#17703a}.fail{color:#b3261e;font-weight:600}
tr.fail td{background:#fdecea}
.chart-box{margin:10px 0 18px;background:#fff;border:1px solid #e3e6eb;padding:6px 8px;break-inside:avoid}
figcaption{font-weight:600;margin:2px 0 4px;overflow-wrap:anywhere}
.chart{width:100%;min-height:240px}
.note{color:#4a5263;font-size:.9em;margin:.2em 0}
footer{margin-top:24px;color:#6b7384;font-size:.85em}
@media print{body{background:#fff;font-size:10pt}main{max-width:none;padding:0}
.chart-box,table,section.timer{break-inside:avoid}h2{break-after:avoid}}
"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var HEIGHT = 240, plots = [];
  var colors = ["#2f6fd0", "#e08a00", "#c62828"];
  var palette = colors.concat(["#2e7d32", "#6a1b9a"]);
  // The last, partial point is left out (see _last_partial).
  var n = data.partial ? data.x.length - 1 : data.x.length;
  function cut(column) { return column.slice(0, n); }
  function axes(left) {
    return [{label: "elapsed (s)"}, {label: left, size: 60}];
  }
  function line(label, color, extra) {
    var s = {label: label, stroke: color, width: 1.5, spanGaps: false};
    for (var k in extra || {}) { s[k] = extra[k]; }
    return s;
  }
  function make(el) {
    var kind = el.getAttribute("data-chart"), d, series, ax;
    var x = {label: "elapsed (s)", value: function (u, v) { return v == null ? "-" : v.toFixed(1) + " s"; }};
    if (kind === "throughput") {
      d = [data.x, data.tps, data.eps];
      series = [x, line("tx/s", colors[0]), line("errors/s", colors[2])];
      ax = axes("per second");
    } else if (kind === "cpu") {
      d = [data.cpu.x, data.cpu.busiest];
      series = [x, line("CPU %", "#6a1b9a")];
      ax = axes("% of one core");
    } else if (kind === "active") {
      d = [data.x, data.active];
      series = [x, line("cannons", "#2e7d32")];
      ax = axes("cannons");
    } else if (kind === "starts") {
      var s = data.starts;
      var rate = function (counts) {
        return counts.map(function (n, i) { return s.dur[i] > 0 ? Math.round(n / s.dur[i] * 100) / 100 : 0; });
      };
      d = [data.x, rate(s.planned), rate(s.started), rate(s.dropped)];
      series = [x, line("planned/s", colors[0]), line("started/s", "#2e7d32"), line("dropped/s", colors[2])];
      ax = axes("starts/s");
    } else if (kind === "requests") {
      var r = data.requests;
      d = [data.x].concat(r.p95);
      series = [x].concat(r.names.map(function (name, i) { return line(name, palette[i % palette.length]); }));
      ax = axes("p95 (ms)");
    } else if (kind === "lag") {
      var lag = data.starts.lag;
      d = [data.x, lag[0], lag[1], lag[2]];
      series = [x, line("p50", colors[0]), line("p99", colors[1]), line("max", colors[2])];
      ax = axes("ms");
    } else {
      var t = data.timers[Number(el.getAttribute("data-index"))] || [[], [], []];
      d = [data.x, t[0], t[1], t[2]];
      series = [x, line("p50", colors[0]), line("p95", colors[1]), line("p99", colors[2])];
      ax = axes("ms");
    }
    if (kind !== "cpu") { d = d.map(cut); }
    // Every scale starts at 0 (so a chart's height means what it shows);
    // the CPU's goes to 100 % at least.
    var top = kind === "cpu" ? 100 : 1;
    var scales = {x: {time: false},
                  y: {range: function (u, lo, hi) { return [0, Math.max(top, hi * 1.05)]; }}};
    // Without the cursor on it, the legend shows the last point's values
    // (not "--"), so a printed or captured page shows figures.
    var last = d[0].length - 1, busy = false;
    function lastValues(u) {
      if (u.legend.idx == null && last >= 0 && !busy) {
        busy = true; u.setLegend({idx: last}, false); busy = false;
      }
    }
    function drawn(u) {  // for the tests: what was drawn
      el.setAttribute("data-points", String(u.data[0].length));
      el.setAttribute("data-y-min", String(u.scales.y.min));
    }
    var plot = new uPlot({width: Math.max(200, el.clientWidth), height: HEIGHT,
                          scales: scales, series: series, axes: ax, legend: {live: true},
                          hooks: {setLegend: [lastValues], draw: [drawn]}}, d, el);
    if (last >= 0) { plot.setLegend({idx: last}, false); }
    el.setAttribute("data-rendered", "1");
    plots.push([plot, el]);
  }
  var charts = document.querySelectorAll(".chart");
  for (var i = 0; i < charts.length; i++) { make(charts[i]); }
  function fit() {
    for (var i = 0; i < plots.length; i++) {
      plots[i][0].setSize({width: Math.max(200, plots[i][1].clientWidth), height: HEIGHT});
    }
  }
  window.addEventListener("resize", fit);
  window.addEventListener("beforeprint", fit);
  document.documentElement.setAttribute("data-charts-rendered", String(plots.length));
})();
"""
