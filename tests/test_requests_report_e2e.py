"""
The HTML report of a real run, in headless Chromium: a standalone
``twistd oct-turret --report`` run whose requests carry names holding
markup (a ``<script>``, an ``onerror`` image, a default name whose path
holds ``<b>``) shows those names as text, runs none of them, and its
Requests table counts exactly the requests the target saw.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from pathlib import Path

from twisted.web.resource import Resource
from twisted.web.server import Request

from tests import browser
from tests.helpers import TurretTestCase, serve_quietly
from tests.test_report_requests import table

SCRIPT = "hostile_names.py"
SCRIPT_NAME = "<script>document.title='pwned'</script>"
IMAGE_NAME = '<img src=x onerror="window.__alerted=1"> broken'


class Target(Resource):
    """
    /page (200), /error (500), anything else (200); counts every request
    as it arrives, under the name the turret should give it.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: Counter[str] = Counter()

    def render_GET(self, request: Request) -> bytes:
        path = request.path.decode("utf-8", "replace")
        if path == "/page":
            self.seen[SCRIPT_NAME] += 1
            return b"page"
        if path == "/error":
            self.seen[IMAGE_NAME] += 1
            request.setResponseCode(500)
            return b"broken"
        self.seen[f"GET {path}"] += 1
        return b"bold"


class ReportInBrowserTests(TurretTestCase):
    timeout = 180

    def setUp(self) -> None:
        if browser.chromium() is None:
            self.skipTest(browser.MISSING)

    def serve(self) -> tuple[Target, str]:
        target = Target()
        return target, serve_quietly(self, target)

    async def test_hostile_names_of_a_real_run(self) -> None:
        """
        A 2 s standalone run (2 cannons) whose requests are named with a
        ``<script>`` (setting the title), an ``onerror`` image (answered
        500) and a default name holding ``<b>``: opened in headless
        Chromium, its report keeps its own title, no script of a name ran
        (nothing alerted, no CSP violation, no request made), no element
        of a name is in the DOM, each name is the text of its row in the
        Requests table, the failures table names the image's requests
        with ``HTTP 500``, and each row's requests and failures are those
        counted at the target (and in ``--summary-json``).
        """
        target, base = self.serve()
        turret = self.launch(
            SCRIPT, standalone=True, target_base=base,
            args=("--duration", "2", "--report", "R.html", "--summary-json", "summary.json"),
        )
        self.assertEqual(await turret.wait_exit(60), 0, turret.output)
        seen = dict(target.seen)
        self.assertEqual(set(seen), {SCRIPT_NAME, IMAGE_NAME, "GET /<b>bold</b>"}, turret.output)
        self.assertGreater(min(seen.values()), 0)
        summary = json.loads((turret.folder / "summary.json").read_text())
        self.assertEqual({row["name"]: row["requests"] for row in summary["requests"]}, seen)

        work = Path(self.mktemp()).absolute()
        page = await browser.open_page(turret.folder / "R.html", work)
        dom = page.dom
        title = re.search(r"<title>(.*?)</title>", dom, re.S)
        assert title is not None
        written = re.search(r"<title>(.*?)</title>", (turret.folder / "R.html").read_text(), re.S)
        assert written is not None
        self.assertEqual(title[1], written[1])
        self.assertTrue(html.unescape(title[1]).startswith(f"Run report: {SCRIPT} on "), title[1])
        self.assertNotIn("pwned", title[1])
        self.assertNotIn("<script>document.title", dom)
        self.assertNotIn("<img src", dom)
        self.assertNotIn("<b>bold", dom)
        probe = page.probe
        assert probe is not None, dom[-3000:]
        self.assertEqual(probe["scripts_alerted"], 0)
        self.assertEqual(probe["violations"], [])
        self.assertEqual(probe["resources"], [])
        self.assertEqual(browser.page_requests(page.requests), [])

        rows = table(dom, "requests-table")
        shown = {cells[1][0]: cells for cells in rows}
        self.assertEqual(set(shown), set(seen))
        for name, count in seen.items():
            cells = shown[name]
            self.assertEqual(cells[0][0], "GET", name)
            self.assertEqual(int(cells[2][0].replace(",", "")), count, name)
            self.assertEqual(cells[2][1], str(count), name)
            self.assertEqual(cells[3][1], str(count if name == IMAGE_NAME else 0), name)
        failures = [[cell[0] for cell in cells] for cells in table(dom, "request-failures-table")]
        self.assertEqual(failures, [["GET", IMAGE_NAME, "HTTP 500", f"{seen[IMAGE_NAME]:,}"]])
        self.assertIn("&lt;script&gt;document.title='pwned'&lt;/script&gt;", dom)
        section = re.search(r'<section id="requests">.*?</section>', dom, re.S)
        assert section is not None
        legend = [html.unescape(label) for label in re.findall(r'<div class="u-label">([^<]*)</div>', section[0])]
        self.assertEqual(set(legend) & set(seen), set(seen))

