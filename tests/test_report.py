"""
The HTML report: self-contained, escaped, and rendered for real in
headless Chromium (every chart drawn, no network request).
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core.thresholds import evaluate, parse_thresholds
from octtwisted._stats.report import ReportData, render
from octtwisted._stats.summary import RunStats
from octtwisted._stats.timeline import Timeline
from tests import browser
from tests.test_summary import result

HOSTILE = '<script>window.__alerted=1</script><img src=x onerror="window.__alerted=2">&amp;'


def make_report(*, seconds: int = 30, hostile: str = "plain", timers: tuple[str, ...] = ("login",)) -> str:
    """
    A report of a simulated run: ``seconds`` of 1 s buckets, custom
    ``timers``, errors whose text is ``hostile``, a passing and a failing
    threshold.
    """
    clock = Clock()
    stats = RunStats()
    timeline = Timeline(clock, stats, lambda: 5)
    timeline.start()
    for second in range(seconds):
        for i in range(50):
            stats.record(result(0.01 + (i % 10) * 0.001 + second * 0.0001,
                                error=f"{hostile} #{i % 3}" if i < 3 else "",
                                custom_timers={name: 0.005 for name in timers}))
        clock.advance(1.0)
    summary = stats.summary(duration=float(seconds), cannons=5, cannons_reached=5)
    timeline.stop()
    thresholds = parse_thresholds({"scriptrun_time": ["p95 < 1"], "errors": ["rate < 0.001"]})
    summary = attrs.evolve(
        summary,
        thresholds=evaluate(thresholds, stats, transactions=summary.transactions,
                            errors=summary.errors, duration=summary.duration),
    )
    data = ReportData(
        title=f"Run report: {hostile}.py",
        settings=(("Script", f"{hostile}.py"), ("Cannons", "5")),
        summary=summary,
        timeline=timeline.to_dict(),
        top_errors=stats.top_errors(20),
    )
    return render(data)


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
                     "Active cannons", "login: p50, p95, p99 (ms)", "search: p50, p95, p99 (ms)",
                     "FAIL", "pass", "rate &lt; 0.001"):
            self.assertIn(text, page)
        self.assertEqual(len(re.findall(r'class="chart"', page)), 5)

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
        An hour of 1 s points with two custom timers stays far below 2 MB.
        """
        page = make_report(seconds=3600, timers=("login", "search"))
        self.assertLess(len(page.encode()), 2_000_000)


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
        self.assertEqual(len(probe["charts"]), 5)
        for chart in probe["charts"]:
            self.assertEqual(chart["rendered"], "1")
            self.assertGreater(chart["width"], 100)
            self.assertGreater(chart["height"], 100)
        self.assertEqual(probe["resources"], [])
        self.assertEqual(probe["violations"], [])
        self.assertEqual(probe["scripts_alerted"], 0)
        self.assertEqual(browser.page_requests(page.requests), [])
        self.assertGreater(page.screenshot.stat().st_size, 20_000)

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
