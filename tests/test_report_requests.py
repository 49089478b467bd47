"""
The HTML report's per-request part: the Requests and Request failures
tables (every row and value, hostile names escaped and cut), the chart of
the busiest names' p95, no section without requests; and in headless
Chromium, a ``<script>`` in a request's name shown as text, never run, and
the tables sorted by a click on a column's header.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Sequence

import attrs
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._stats.histogram import TimerStats
from octtwisted._stats.report import ReportData, render
from octtwisted._stats.report_requests import (
    CHART_NAMES,
    LEGEND_WIDTH,
    NAME_WIDTH,
    REASON_WIDTH,
    TITLE_LIMIT,
    cut_html,
    cut_text,
)
from octtwisted._stats.requests import OTHER_NAMES, RequestFailureRow, RequestRow
from octtwisted._stats.summary import RunStats
from octtwisted._stats.timeline import Timeline
from tests import browser
from tests.test_report import report_data
from tests.test_summary import result

SCRIPT_NAME = "GET /<script>document.title='pwned'</script>"
HOSTILE_NAME = '<img src=x onerror="window.__alerted=3">'


def stats(p50: float, p95: float, top: float, count: int = 100) -> TimerStats:
    """A request name's times (seconds)."""
    return TimerStats(count=count, min=p50 / 2, mean=p50, p50=p50, p90=(p50 + p95) / 2,
                      p95=p95, p99=(p95 + top) / 2, max=top)


def row(name: str, requests: int, failures: int = 0, p95: float = 0.1, *, method: str = "GET",
        timed: bool = True, statuses: tuple[tuple[int, int], ...] | None = None,
        average_bytes: float | None = 512.0) -> RequestRow:
    """A request name's row over a 10 s run."""
    if statuses is None:
        statuses = ((200, requests - failures), (503, failures)) if failures else ((200, requests),)
    return RequestRow(
        method=method, name=name, requests=requests, failures=failures,
        requests_per_second=requests / 10.0,
        time=stats(p95 / 2, p95, p95 * 2, requests) if timed else None,
        average_bytes=average_bytes, statuses=statuses,
    )


def report(rows: Sequence[RequestRow], failures: Sequence[RequestFailureRow] = (),
           chart: dict[str, list[float | None]] | None = None, seconds: int = 10) -> ReportData:
    """
    The report data of a simulated run of ``seconds`` (20 transactions a
    second through the real collector and timeline) whose summary has
    ``rows`` and ``failures``, and whose timeline has ``chart`` (name ->
    p95 per point, in seconds) as its ``requests``, when given.
    """
    clock = Clock()
    run = RunStats()
    timeline = Timeline(clock, run, lambda: 5)
    timeline.start()
    for _ in range(seconds):
        for i in range(20):
            run.record(result(0.01 + i * 0.001))
        clock.advance(1.0)
    summary = run.summary(duration=float(seconds), cannons=5, cannons_reached=5)
    timeline.stop()
    points = timeline.to_dict()
    if chart is not None:
        points["requests"] = {name: {"p95": values} for name, values in chart.items()}
    summary = attrs.evolve(summary, requests=tuple(rows), request_failures=tuple(failures))
    return ReportData(title="Run report: requests.py", settings=(("Script", "requests.py"),),
                      summary=summary, timeline=points, top_errors=())


def table(page: str, table_id: str) -> list[list[tuple[str, str | None, str]]]:
    """
    The rows of a table of the page: each cell as (its text, its data-v,
    its markup).
    """
    found = re.search(rf'<table [^>]*id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert found is not None, table_id
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", found[1], re.S):
        cells = []
        for attributes, inner in re.findall(r"<td([^>]*)>(.*?)</td>", tr, re.S):
            value = re.search(r'data-v="([^"]*)"', attributes)
            cells.append((html.unescape(re.sub(r"<[^>]+>", "", inner)), value[1] if value else None, inner))
        rows.append(cells)
    return rows


def texts(rows: list[list[tuple[str, str | None, str]]]) -> list[list[str]]:
    """Each cell's text."""
    return [[cell[0] for cell in r] for r in rows]


def series(seconds: int, base: float) -> list[float | None]:
    """A p95 per point: rising from ``base`` seconds, no value at the 3rd."""
    return [None if i == 2 else base * (1 + i / 10) for i in range(seconds)]


class RenderTests(SynchronousTestCase):
    def test_every_row_and_value(self) -> None:
        """
        The Requests table has one row per name in the summary's order,
        each with its method, name, requests, failures (with their share),
        requests/s, p50/p90/p95/p99/max in ms, average bytes and status
        codes with counts; each number cell sorts by the exact value. The
        failures table has every (method, name, reason, count) in order.
        Each column's header is a button.
        """
        rows = [
            row("GET /home", 1234, 12, 0.25, statuses=((200, 1222), (503, 12)), average_bytes=2048.4),
            row("search", 300, 0, 0.032, method="POST", average_bytes=97.0),
            row(OTHER_NAMES, 7, 7, 0.005, method="GET,PUT", statuses=((404, 5), (500, 2))),
        ]
        failures = [
            RequestFailureRow("GET", "GET /home", "HTTP 503", 12),
            RequestFailureRow("GET,PUT", OTHER_NAMES, "HTTP 404", 5),
            RequestFailureRow("GET,PUT", OTHER_NAMES, "ConnectionRefusedError", 2),
        ]
        page = render(report(rows, failures))
        self.assertIn("Requests (3 names)", page)
        cells = table(page, "requests-table")
        self.assertEqual(texts(cells), [
            ["GET", "GET /home", "1,234", "12 (0.97%)", "123.40", "125.0", "187.5", "250.0",
             "375.0", "500.0", "2,048", "200 (1,222), 503 (12)"],
            ["POST", "search", "300", "0 (0.00%)", "30.00", "16.00", "24.00", "32.00", "48.00",
             "64.00", "97", "200 (300)"],
            ["GET,PUT", OTHER_NAMES, "7", "7 (100.00%)", "0.70", "2.500", "3.750", "5.000", "7.500",
             "10.00", "512", "404 (5), 500 (2)"],
        ])
        first = cells[0]
        self.assertEqual([c[1] for c in first[2:11]],
                         ["1234", "12", "123.4", "0.125", "0.1875", "0.25", "0.375", "0.5", "2048.4"])
        self.assertEqual(texts(table(page, "request-failures-table")), [
            ["GET", "GET /home", "HTTP 503", "12"],
            ["GET,PUT", OTHER_NAMES, "HTTP 404", "5"],
            ["GET,PUT", OTHER_NAMES, "ConnectionRefusedError", "2"],
        ])
        self.assertIn("Request failures (3)", page)
        # Every column's header is a button (a click, or the keyboard, sorts).
        self.assertEqual(len(re.findall(r'<th aria-sort="none"><button type="button" data-col=', page)), 12 + 4)

    def test_not_measured_is_not_zero(self) -> None:
        """
        A name whose times were never measured shows "n/a" (sorting last),
        not 0; one that never got a response has no status and no average
        size; many status codes are listed up to six, the rest counted,
        all in the title. A run without failures says so.
        """
        statuses = tuple((code, 10 - i) for i, code in enumerate((200, 201, 204, 301, 404, 500, 502, 503)))
        rows = [row("never answered", 5, 5, timed=False, statuses=(), average_bytes=None),
                row("many codes", 52, 0, statuses=statuses)]
        page = render(report(rows))
        cells = table(page, "requests-table")
        self.assertEqual([c[0] for c in cells[0][5:12]], ["n/a"] * 6 + ["none"])
        self.assertEqual([c[1] for c in cells[0][5:11]], [""] * 6)
        self.assertEqual(cells[1][11][0], "200 (10), 201 (9), 204 (8), 301 (7), 404 (6), 500 (5), 2 more")
        self.assertIn('title="200 (10), 201 (9), 204 (8), 301 (7), 404 (6), 500 (5), 502 (4), 503 (3)"', page)
        self.assertIn("<h2>Request failures</h2><p>No request failed.</p>", page)

    def test_hostile_names_escaped(self) -> None:
        """
        Names and reasons with markup, quotes, ``&``, control characters,
        a replacement character (bytes that were not UTF-8), a lone
        surrogate and a right-to-left override are shown as text: escaped,
        the invisible ones as visible escapes; the page encodes as UTF-8;
        no element of theirs reaches the page (it has its own four scripts
        only), and the JSON block holds no ``<``.
        """
        hostile = [
            SCRIPT_NAME, HOSTILE_NAME, 'say "hi" & <b>bye</b>', "nul\x00bell\x07esc\x1b[31mred",
            "caf\ufffd /menu", "lone \udcff surrogate", "evil \u202etxt.exe",
        ]
        rows = [row(name, 100 - i, 1) for i, name in enumerate(hostile)]
        failures = [RequestFailureRow("GET", name, f"HTTP 500 {name}", 1) for name in hostile]
        page = render(report(rows, failures, chart={name: series(10, 0.01) for name in hostile}))
        page.encode("utf-8")  # strict: no lone surrogate left
        self.assertEqual(page.count("<script"), 4)
        self.assertNotIn("<img src=x", page)
        self.assertNotIn("<b>bye", page)
        for raw in ("\x00", "\x07", "\x1b", "\u202e"):
            self.assertNotIn(raw, page)
        self.assertIn("&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;", page)
        self.assertIn("say &quot;hi&quot; &amp; &lt;b&gt;bye&lt;/b&gt;", page)
        shown = [r[1][0] for r in table(page, "requests-table")]
        self.assertEqual(shown, [
            SCRIPT_NAME, HOSTILE_NAME, 'say "hi" & <b>bye</b>', "nul\\x00bell\\x07esc\\x1b[31mred",
            "caf\ufffd /menu", "lone \\udcff surrogate", "evil \\u202etxt.exe",
        ])
        reasons = [r[2][0] for r in table(page, "request-failures-table")]
        self.assertEqual(reasons, [f"HTTP 500 {name}" for name in shown])
        block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
        assert block is not None
        self.assertNotIn("<", block[1])
        self.assertNotIn("&", block[1])
        self.assertEqual(report_data(page)["requests"]["names"], shown[:CHART_NAMES])

    def test_long_names_cut(self) -> None:
        """
        A 1 MB name and a 1 MB reason are cut for display (the cell shows
        their first characters and an ellipsis, the title the first
        2,000, the legend fewer still): the page grows by a few KB, not by
        megabytes.
        """
        long_name = "/item/" + "x" * 1_000_000
        long_reason = "HTTP 500 " + "\u00e9<" * 500_000
        short = render(report([row("a", 10, 1)], [RequestFailureRow("GET", "a", "HTTP 500", 1)],
                              chart={"a": series(10, 0.01)}))
        page = render(report([row(long_name, 10, 1)], [RequestFailureRow("GET", long_name, long_reason, 1)],
                             chart={long_name: series(10, 0.01)}))
        self.assertLess(len(page) - len(short), 3 * TITLE_LIMIT * 6 + 2000)
        cell = table(page, "requests-table")[0][1]
        self.assertEqual(cell[0], long_name[: NAME_WIDTH - 3] + "...")
        title = re.search(r'title="([^"]*)"', cell[2])
        assert title is not None
        self.assertEqual(html.unescape(title[1]), long_name[: TITLE_LIMIT - 3] + "...")
        reason = table(page, "request-failures-table")[0][2][0]
        self.assertEqual(reason, long_reason[: REASON_WIDTH - 3] + "...")
        self.assertEqual(report_data(page)["requests"]["names"], [long_name[: LEGEND_WIDTH - 3] + "..."])

    def test_cut(self) -> None:
        """
        The display helper: a text that fits is only escaped; a longer one
        is cut with an ellipsis and titled; one made longer by its escapes
        is cut too.
        """
        self.assertEqual(cut_text("abc", 3), "abc")
        self.assertEqual(cut_text("abcde", 4), "a...")
        self.assertEqual(cut_text("\x00\x01", 7), "\\x00...")
        self.assertEqual(cut_html("<a>", 3), "&lt;a&gt;")
        self.assertEqual(cut_html("<a>bcd", 5), '<span title="&lt;a&gt;bcd">&lt;a...</span>')

    def test_no_requests_no_section(self) -> None:
        """
        A run that made no request has neither section, nor the chart or
        its data, even if its timeline has an (empty or stray) ``requests``
        key; the rest of the report is all there.
        """
        for chart in (None, {}, {"GET /": series(10, 0.01)}):
            page = render(report([], chart=chart))
            for text in ('id="requests"', 'id="request-failures"', 'data-chart="requests"', "Request failures"):
                self.assertNotIn(text, page)
            self.assertNotIn("requests", report_data(page))
            for text in ("Settings", "Summary", "Timers", "Transactions and errors per second"):
                self.assertIn(text, page)

    def test_no_chart_without_its_data(self) -> None:
        """
        Requests in the summary but a timeline without ``requests`` (older
        data): the tables, and no chart.
        """
        page = render(report([row("GET /", 10)]))
        self.assertIn('id="requests-table"', page)
        self.assertNotIn('data-chart="requests"', page)
        self.assertNotIn("requests", report_data(page))

    def test_chart_data(self) -> None:
        """
        The chart lists the timeline's names, busiest first (the summary's
        order, not the timeline's), at most five, with their p95 in ms per
        point (None where a point has none), aligned with the points.
        """
        names = [f"GET /{i}" for i in range(7)]
        rows = [row(name, 1000 - i) for i, name in enumerate(names)]
        chart = {name: series(10, 0.001 * (i + 1)) for i, name in reversed(list(enumerate(names[:6])))}
        page = render(report(rows, chart=chart))
        self.assertEqual(page.count('data-chart="requests"'), 1)
        self.assertIn("p95 of the busiest requests over time (ms)", page)
        data = report_data(page)
        self.assertEqual(data["requests"]["names"], names[:5])
        p95 = data["requests"]["p95"]
        self.assertEqual(len(p95), 5)
        for i, values in enumerate(p95):
            self.assertEqual(len(values), len(data["x"]))
            self.assertIsNone(values[2])
            self.assertAlmostEqual(values[0], (i + 1) * 1.0)
            self.assertAlmostEqual(values[9], (i + 1) * 1.9)


#: Appended to a report before it is opened: clicks headers, one after
#: the other, and writes the order of the first cells after each click
#: (and the headers' aria-sort) into <pre id="sorted">.
CLICKS = """
window.addEventListener("load", function () {
  function order(id, col) {
    return Array.prototype.map.call(document.getElementById(id).tBodies[0].rows,
                                    function (r) { return r.cells[col].textContent; });
  }
  function click(id, label) {
    var buttons = document.getElementById(id).tHead.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].textContent === label) { buttons[i].click(); return buttons[i].parentNode.getAttribute("aria-sort"); }
    }
    return "missing " + label;
  }
  var seen = [];
  var steps = [["requests-table", "p95"], ["requests-table", "p95"], ["requests-table", "name"],
               ["requests-table", "name"], ["requests-table", "requests"], ["requests-table", "status codes"],
               ["request-failures-table", "count"], ["request-failures-table", "reason"]];
  steps.forEach(function (step) {
    var sort = click(step[0], step[1]);
    seen.push({sort: sort, names: order(step[0], 1)});
  });
  var pre = document.createElement("pre");
  pre.id = "sorted";
  pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
});
"""


def dom_json(dom: str, element_id: str) -> Any:
    """The JSON text of a <pre> the page's scripts wrote."""
    found = re.search(rf'<pre id="{element_id}">(.*?)</pre>', dom, re.S)
    assert found is not None, dom[-3000:]
    return json.loads(html.unescape(found[1]))


class BrowserTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        if browser.chromium() is None:
            self.skipTest(browser.MISSING)
        self.work = Path(self.mktemp()).absolute()
        self.work.mkdir(parents=True)

    async def test_script_in_a_name_is_shown(self) -> None:
        """
        In headless Chromium, a request name holding
        ``<script>document.title='pwned'</script>`` (and one with an
        ``onerror`` image) is shown as text in both tables and in the
        chart's legend; no script of theirs ran (the title is the
        report's, nothing alerted), the CSP saw no violation, and the page
        made no request. The requests chart is drawn.
        """
        rows = [row(SCRIPT_NAME, 500, 5), row(HOSTILE_NAME, 200)]
        failures = [RequestFailureRow("GET", SCRIPT_NAME, f"HTTP 500 {SCRIPT_NAME}", 5)]
        data = report(rows, failures, chart={SCRIPT_NAME: series(10, 0.02), HOSTILE_NAME: series(10, 0.01)})
        path = self.work / "report.html"
        path.write_text(render(data), encoding="utf-8")
        page = await browser.open_page(path, self.work)
        title = re.search(r"<title>(.*?)</title>", page.dom, re.S)
        assert title is not None
        self.assertEqual(title[1], "Run report: requests.py")
        escaped = "&lt;script&gt;document.title='pwned'&lt;/script&gt;"
        self.assertNotIn("<script>document.title", page.dom)
        self.assertNotIn("<img src=\"x\"", page.dom)
        section = re.search(r'<section id="requests">.*?</section>', page.dom, re.S)
        assert section is not None
        self.assertIn(f'<td class="name">GET /{escaped}</td>', section[0])
        legend = re.findall(r'<div class="u-label">([^<]*)</div>', section[0])
        legend = [html.unescape(label) for label in legend]
        self.assertIn(SCRIPT_NAME, legend)
        self.assertIn(HOSTILE_NAME, legend)
        self.assertIn(f"HTTP 500 GET /{escaped}", page.dom)
        probe = page.probe
        self.assertIsNotNone(probe, page.dom[-3000:])
        assert probe is not None
        self.assertEqual(probe["scripts_alerted"], 0)
        self.assertEqual(probe["violations"], [])
        self.assertEqual(probe["resources"], [])
        self.assertEqual(browser.page_requests(page.requests), [])
        charts = re.findall(r'<div class="chart" data-chart="requests"[^>]*>', page.dom)
        self.assertEqual(len(charts), 1)
        self.assertIn('data-rendered="1"', charts[0])
        self.assertIn('data-points="10"', charts[0])

    async def test_sort_by_click(self) -> None:
        """
        In headless Chromium, a click on a column's header sorts the rows
        by it: p95 largest first, a second click smallest first (the name
        never timed last both times); name A to Z then Z to A; requests
        largest first; status codes as text; the failures table by count
        and by reason. The header says how it is sorted (aria-sort).
        """
        rows = [
            row("b-mid", 300, 1, 0.2),
            row("a-slow", 100, 0, 0.9),
            row("d-untimed", 50, 50, timed=False, statuses=()),
            row("c-fast", 800, 3, 0.01, statuses=((200, 797), (500, 3))),
        ]
        failures = [
            RequestFailureRow("GET", "d-untimed", "ConnectionRefusedError", 50),
            RequestFailureRow("GET", "c-fast", "HTTP 500", 3),
            RequestFailureRow("GET", "b-mid", "timeout after 30 s", 1),
        ]
        path = self.work / "sort.html"
        path.write_text(browser.with_scripts(render(report(rows, failures)), CLICKS), encoding="utf-8")
        page = await browser.open_page(path, self.work)
        seen = dom_json(page.dom, "sorted")
        self.assertEqual(seen, [
            {"sort": "descending", "names": ["a-slow", "b-mid", "c-fast", "d-untimed"]},
            {"sort": "ascending", "names": ["c-fast", "b-mid", "a-slow", "d-untimed"]},
            {"sort": "ascending", "names": ["a-slow", "b-mid", "c-fast", "d-untimed"]},
            {"sort": "descending", "names": ["d-untimed", "c-fast", "b-mid", "a-slow"]},
            {"sort": "descending", "names": ["c-fast", "b-mid", "a-slow", "d-untimed"]},
            # "200 (100)" < "200 (299), 503 (1)" < "200 (797), 500 (3)" < "none"
            {"sort": "ascending", "names": ["a-slow", "b-mid", "c-fast", "d-untimed"]},
            {"sort": "descending", "names": ["d-untimed", "c-fast", "b-mid"]},
            {"sort": "ascending", "names": ["d-untimed", "c-fast", "b-mid"]},
        ])
