"""
The HTML report: self-contained, escaped, and rendered for real in
headless Chromium (every chart drawn, no network request); in the open
model, with the starts and start lag charts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core.thresholds import evaluate, parse_thresholds
from octtwisted._stats.report import ReportData, render
from octtwisted._stats.starts import StartStats
from octtwisted._stats.summary import RunStats
from octtwisted._stats.timeline import Timeline
from tests import browser
from tests.test_summary import result

HOSTILE = '<script>window.__alerted=1</script><img src=x onerror="window.__alerted=2">&amp;'


def make_report(*, seconds: int = 30, hostile: str = "plain", timers: tuple[str, ...] = ("login",),
                open_model: bool = False, tail: float = 0.0, all_fail: bool = False,
                cpu: bool = True) -> str:
    """
    A report of a simulated run: ``seconds`` of 1 s buckets, custom
    ``timers``, errors whose text is ``hostile``, a passing and a failing
    threshold. With ``open_model``, 60 starts are planned a second, 50
    start (lag 1 to 5 ms), and 10 are dropped from the 10th second on.
    A ``tail`` of seconds with 5 results ends the run within a last,
    partial point; with ``all_fail`` every transaction fails. The turret's
    CPU is 30 % to 60 % (not measured without ``cpu``).
    """
    clock = Clock()
    stats = RunStats()
    starts = StartStats() if open_model else None
    timeline = Timeline(clock, stats, lambda: 5, starts=starts)
    timeline.start()
    for second in range(seconds):
        for i in range(50):
            if starts is not None:
                starts.plan()
                starts.start(0.001 + (i % 5) * 0.001)
            stats.record(result(0.01 + (i % 10) * 0.001 + second * 0.0001,
                                error=f"{hostile} #{i % 3}" if i < 3 or all_fail else "",
                                custom_timers={name: 0.005 for name in timers}))
        if starts is not None:
            for _ in range(10):
                starts.plan()
                if second >= 10:
                    starts.drop()
                else:
                    starts.start(0.001)
        clock.advance(1.0)
    if tail:
        for i in range(5):
            stats.record(result(0.01, custom_timers={name: 0.005 for name in timers}))
        clock.advance(tail)
    summary = stats.summary(duration=float(seconds), cannons=5, cannons_reached=5,
                            starts=starts.figures() if starts is not None else None)
    timeline.stop()
    thresholds = parse_thresholds({"scriptrun_time": ["p95 < 1"], "errors": ["rate < 0.001"]})
    summary = attrs.evolve(
        summary,
        cpu_peak=0.6 if cpu else None,
        thresholds=evaluate(thresholds, stats, transactions=summary.transactions,
                            errors=summary.errors, duration=summary.duration),
    )
    data = ReportData(
        title=f"Run report: {hostile}.py",
        settings=(("Script", f"{hostile}.py"), ("Cannons", "5")),
        summary=summary,
        timeline=timeline.to_dict(),
        top_errors=stats.top_errors(20),
        cpu={"end": [float(s + 1) for s in range(seconds)],
             "busiest": [0.3 + 0.3 * (s % 2) for s in range(seconds)], "peak": 0.6} if cpu else None,
    )
    return render(data)


def report_data(page: str) -> Any:
    """
    The report's JSON block (the charts' data).
    """
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert found is not None
    return json.loads(found[1])


OPEN_CHARTS = ("Starts per second: planned, started, dropped", "Start lag: p50, p99, max (ms)")


class RenderTests(SynchronousTestCase):
    def test_self_contained(self) -> None:
        """
        The page loads nothing: no external script, style, link, image or
        font URL; the chart library is inline, and a Content Security Policy
        forbids any load.
        """
        page = make_report()
        self.assertNotRegex(page, r"(?i)<(script|img|iframe)[^>]*\ssrc=")
        self.assertNotRegex(page, r"(?i)<link\b")
        self.assertNotRegex(page, r"(?i)url\(\s*['\"]?(https?:)?//")
        self.assertNotRegex(page, r"(?i)@import")
        self.assertIn("uPlot", page)
        self.assertIn("default-src 'none'", page)

    def test_contents(self) -> None:
        """
        Settings, summary, timers, thresholds (pass and FAIL with the
        measured value), the three run charts plus one per custom timer,
        and the error table are all there.
        """
        page = make_report(timers=("login", "search"))
        for text in ("Settings", "Summary", "Timers", "Thresholds", "Most frequent errors",
                     "Transactions and errors per second", "scriptrun_time: p50, p95, p99 (ms)",
                     "Active cannons", "Turret CPU", "login: p50, p95, p99 (ms)", "search: p50, p95, p99 (ms)",
                     "FAIL", "pass", "rate &lt; 0.001"):
            self.assertIn(text, page)
        self.assertEqual(len(re.findall(r'class="chart"', page)), 6)

    def test_open_model_charts(self) -> None:
        """
        An open-model run's report has the starts and start lag charts
        (seven in all: four for the run, these two, one for ``login``), their data (starts counted per point, with each
        point's duration, lag in ms) and the start figures in the summary
        table; a closed-model run's has neither the charts nor their data.
        """
        page = make_report(open_model=True)
        for caption in OPEN_CHARTS:
            self.assertIn(caption, page)
        self.assertEqual(len(re.findall(r'class="chart"', page)), 7)
        self.assertIn('data-chart="starts"', page)
        self.assertIn('data-chart="lag"', page)
        starts = report_data(page)["starts"]
        self.assertEqual(starts["planned"], [60] * 30)
        self.assertEqual(starts["dropped"], [0] * 10 + [10] * 20)
        self.assertEqual(starts["started"], [60] * 10 + [50] * 20)
        self.assertEqual(starts["dur"], [1.0] * 30)
        p50, p99, top = starts["lag"]
        self.assertEqual(len(p50), 30)
        self.assertLess(abs(top[0] - 5.0), 0.01)
        self.assertLess(abs(p99[-1] - 5.0), 0.01)
        self.assertLess(abs(p50[-1] - 3.0), 0.01)
        for text in ("Planned starts", "Dropped starts", "200 (11.11%): no idle cannon", "Start lag"):
            self.assertIn(text, page)
        closed = make_report()
        for caption in OPEN_CHARTS + ('data-chart="starts"', 'data-chart="lag"', "Dropped starts"):
            self.assertNotIn(caption, closed)
        self.assertNotIn("starts", report_data(closed))

    def test_escaped(self) -> None:
        """
        Markup in error texts, timer names and the script's name is shown
        as text: no element, attribute or script of theirs reaches the page.
        """
        page = make_report(hostile=HOSTILE, timers=(HOSTILE,))
        self.assertNotIn("<script>window.__alerted", page)
        self.assertNotIn("<img src=x", page)
        self.assertIn("&lt;script&gt;window.__alerted=1&lt;/script&gt;", page)
        self.assertIn("&amp;amp;", page)

    def test_size_of_an_hour(self) -> None:
        """
        An hour of 1 s points with two custom timers stays far below 2 MB,
        in the closed model and in the open one (with the start charts).
        """
        for open_model in (False, True):
            page = make_report(seconds=3600, timers=("login", "search"), open_model=open_model)
            self.assertLess(len(page.encode()), 2_000_000)

    def test_custom_timer_once(self) -> None:
        """
        A custom timer's figures are in the timers table only; its own
        section has its chart, not the same row again.
        """
        page = make_report(timers=("login",))
        self.assertEqual(page.count("<td>login</td>"), 1)
        self.assertIn("login: p50, p95, p99 (ms)", page)

    def test_partial_last_point(self) -> None:
        """
        A run that ends 0.3 s into a second has a last, partial point:
        the data keeps it (the counts add up) and says so, for the charts
        to leave it out; a run that ends on a second's end has none.
        """
        data = report_data(make_report(seconds=10, tail=0.3))
        self.assertTrue(data["partial"])
        self.assertEqual(len(data["x"]), 11)
        self.assertFalse(report_data(make_report(seconds=10))["partial"])

    def test_cpu(self) -> None:
        """
        The turret's CPU: its chart (in % of one core) and its peak in the
        summary table; neither when it was not measured.
        """
        page = make_report(seconds=10)
        self.assertIn('data-chart="cpu"', page)
        self.assertIn("<td>Turret CPU peak</td><td>60% of a core</td>", page)
        self.assertEqual(report_data(page)["cpu"]["busiest"][:2], [30.0, 60.0])
        page = make_report(seconds=10, cpu=False)
        self.assertNotIn('data-chart="cpu"', page)
        self.assertNotIn("Turret CPU peak", page)
        self.assertNotIn("cpu", report_data(page))


def chart_attributes(dom: str) -> dict[str, dict[str, str]]:
    """
    Each chart's data-* attributes, by its kind (and index for timers), as
    the page's script left them.
    """
    found = {}
    for tag in re.findall(r'<div class="chart"[^>]*>', dom):
        attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag))
        found[attributes["chart"] + attributes.get("index", "")] = attributes
    return found


def legend_values(dom: str) -> list[str]:
    """The values uPlot's legends show."""
    return re.findall(r'<td class="u-value">([^<]*)</td>', dom)


class BrowserTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        if browser.chromium() is None:
            self.skipTest(browser.MISSING)
        self.work = Path(self.mktemp()).absolute()
        self.work.mkdir(parents=True)

    async def test_charts_render_offline(self) -> None:
        """
        In headless Chromium every chart draws a canvas of non-zero size,
        the page makes no network request (none of its own reaches the
        proxy, no resource entry, no CSP violation), hostile strings run no script,
        and a screenshot is taken.
        """
        path = self.work / "report.html"
        path.write_text(make_report(hostile=HOSTILE, timers=("login", HOSTILE)), encoding="utf-8")
        page = await browser.open_page(path, self.work)
        probe = page.probe
        self.assertIsNotNone(probe, page.dom[-3000:])
        assert probe is not None
        self.assertEqual(len(probe["charts"]), 6)
        for chart in probe["charts"]:
            self.assertEqual(chart["rendered"], "1")
            self.assertGreater(chart["width"], 100)
            self.assertGreater(chart["height"], 100)
        self.assertEqual(probe["resources"], [])
        self.assertEqual(probe["violations"], [])
        self.assertEqual(probe["scripts_alerted"], 0)
        self.assertEqual(browser.page_requests(page.requests), [])
        self.assertGreater(page.screenshot.stat().st_size, 20_000)

    async def test_open_model_charts_render(self) -> None:
        """
        An open-model report's seven charts (the starts and the start lag
        included) all draw a canvas of non-zero size in headless Chromium,
        with no network request.
        """
        path = self.work / "open.html"
        path.write_text(make_report(open_model=True), encoding="utf-8")
        page = await browser.open_page(path, self.work)
        probe = page.probe
        self.assertIsNotNone(probe, page.dom[-3000:])
        assert probe is not None
        self.assertEqual(len(probe["charts"]), 7)
        for chart in probe["charts"]:
            self.assertEqual(chart["rendered"], "1")
            self.assertGreater(chart["width"], 100)
            self.assertGreater(chart["height"], 100)
        self.assertEqual(probe["resources"], [])
        self.assertEqual(probe["violations"], [])
        self.assertEqual(browser.page_requests(page.requests), [])

    async def test_probe_sees_requests(self) -> None:
        """
        The check can fail: a page that loads an image from elsewhere
        shows up at the proxy, and one whose chart is missing is measured
        as such.
        """
        path = self.work / "leaky.html"
        path.write_text(
            '<!DOCTYPE html><html><body><div class="chart"></div>'
            '<img src="http://example.invalid/pixel.png"></body></html>'
        )
        page = await browser.open_page(path, self.work)
        requests = browser.page_requests(page.requests)
        self.assertTrue(any("example.invalid" in r for r in requests), page.requests)
        assert page.probe is not None
        self.assertEqual(page.probe["charts"], [{"rendered": None, "width": 0, "height": 0}])

    async def test_csp_refuses_a_script_that_got_in(self) -> None:
        """
        Escaping is not the only defence: a script in the page that is not
        one of the report's own (as markup in a name would be, were it
        written unescaped) does not run (the title it would set is not
        set, the flag it would raise is not raised), and the charts, whose
        scripts the policy names, are drawn.
        """
        page_text = make_report().replace(
            "<h1>", "<script>document.title='pwned';window.__alerted=1</script><h1>", 1
        )
        path = self.work / "slipped.html"
        path.write_text(page_text, encoding="utf-8")
        page = await browser.open_page(path, self.work)
        title = re.search(r"<title>(.*?)</title>", page.dom, re.S)
        assert title is not None
        self.assertEqual(title[1], "Run report: plain.py")
        assert page.probe is not None
        self.assertEqual(page.probe["scripts_alerted"], 0)
        self.assertTrue(page.probe["charts"])
        self.assertTrue(all(c["rendered"] for c in page.probe["charts"]), page.probe["charts"])

    async def test_glance(self) -> None:
        """
        The report reads right at a glance (and screenshotted): every
        chart's scale starts at 0; the legends show the last point's
        values, not "--", without a cursor; the last, partial second is
        left out of every chart; in a run where everything failed the
        errors/s share the transactions' scale (one y axis, so errors are
        never drawn above the transactions); the CPU chart is drawn.
        """
        path = self.work / "glance.html"
        path.write_text(make_report(seconds=20, tail=0.3, all_fail=True), encoding="utf-8")
        page = await browser.open_page(path, self.work, height=2600)
        charts = chart_attributes(page.dom)
        self.assertEqual(set(charts), {"throughput0", "timer0", "active0", "cpu0", "timer1"})
        for kind, attributes in charts.items():
            self.assertEqual(attributes["y-min"], "0", kind)
            self.assertEqual(attributes["points"], "20", kind)
        values = legend_values(page.dom)
        self.assertGreater(len(values), 10)
        self.assertNotIn("--", values)
        self.assertIn("50", values)  # tx/s and errors/s of the last full second
        found = re.search(r'data-chart="throughput".*?</figure>', page.dom, re.S)
        assert found is not None
        self.assertEqual(found[0].count('class="u-axis"'), 2)  # x and one y
        self.assertGreater(page.screenshot.stat().st_size, 20_000)
