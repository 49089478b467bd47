"""
Text the target or the script controls, in every output (issue 26, item
7): error texts, header values and timer names carrying markup, control
characters, invalid UTF-8 and a megabyte reach the summary table (control
characters shown as escapes, long texts cut), the summary JSON (valid for
a strict reader), the CSV results file (no formula injection; numbers stay
numbers) and the HTML report (escaped, cut), and break none of them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
from twisted.internet import protocol, reactor
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from octtwisted._core.messages import Result
from octtwisted._edge.standalone import json_safe
from octtwisted._firing.errortext import MAX_ERROR_LENGTH, cut_error, describe_error
from octtwisted._firing.outcome import clean_timers
from octtwisted._hq.wire import encode_result
from octtwisted._stats import report
from octtwisted._stats.csvrows import CSVFormat, inert_cell
from octtwisted._stats.framewriter import FramesToCSV
from octtwisted._stats.summary import RunStats
from octtwisted._stats.table import display_text, format_table
from octtwisted.testing import FakeHQ
from tests.helpers import TurretProcess, write_config

#: What a hostile target puts in a header value: a formula, markup, and
#: bytes that are not UTF-8.
EVIL_HEADER = b'=HYPERLINK("http://evil/")<script>alert(1)</script>\xff\xfe'

#: And in a body: markup, terminal escapes (clear the screen, set the
#: window's title), NUL, a right-to-left override, a byte that is not UTF-8,
#: and a megabyte.
EVIL_BODY = (
    b"<img src=x onerror=alert(2)>\x1b[2J\x1b]0;pwned\x07\x00\xe2\x80\xae\xff" + b"A" * 1_000_000
)

#: A hostile text as a script sees it (decoded with ``surrogateescape``).
EVIL = (EVIL_HEADER + EVIL_BODY).decode("utf-8", "surrogateescape")

#: Characters no output may carry raw (but the line breaks and tabs of the
#: files' own layout).
RAW_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

#: The hostile timer name of ``tests/scripts/hostile_text.py``.
TIMER = "=cmd|' /C calc'!A0 <b>x</b>\x1b[31m\u202e\x00"


def result(error: str = "", **timers: float) -> Result:
    return Result(turret_name="t", elapsed=1.0, epoch=1e9, scriptrun_time=0.25, error=error,
                  custom_timers=timers)


def hostile_summary() -> Any:
    stats = RunStats()
    stats.record(result(describe_error(ValueError(EVIL)), **{TIMER: 0.001, "negative": -0.5}))
    stats.record(result(EVIL_HEADER.decode("latin-1") + "\x1b[2J"))
    stats.record(result("", **{"-" + "L" * 100_000: 0.002}))
    return stats.summary(duration=1.0, cannons=1, cannons_reached=1)


class Tags(HTMLParser):
    """The start tags of a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


#: The scripts of a report page of its own: uPlot, the charts, the sorting
#: of the requests' tables, and the data block.
PAGE_SCRIPTS = 4


def check_page(case: TestCase | SynchronousTestCase, page: str) -> None:
    """
    A report page with hostile texts in it: none of their markup became
    a tag, no control character is raw, no text runs past 1,000
    characters, and it encodes to UTF-8.
    """
    page.encode("utf-8")
    case.assertIsNone(RAW_CONTROLS.search(page), RAW_CONTROLS.findall(page)[:5])
    parser = Tags()
    parser.feed(page)
    case.assertNotIn("img", parser.tags)
    case.assertNotIn("b", parser.tags)
    case.assertEqual(parser.tags.count("script"), PAGE_SCRIPTS, "the page's own scripts only")
    case.assertNotIn("A" * 1001, page)
    case.assertNotIn("L" * 1001, page)
    case.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
    case.assertIn("\\x1b[2J", page)


class DisplayTextTests(SynchronousTestCase):
    def test_inert_one_line_cut(self) -> None:
        """
        display_text shows control characters, bidirectional overrides and
        lone surrogates as escapes, puts line breaks on one line, and cuts
        a 1 MB text to the limit, quickly.
        """
        self.assertEqual(display_text("a\x1b[31mb\r\n\tc\x00\u202e\udcff\x85", 100),
                         "a\\x1b[31mb c\\x00\\u202e\\udcff")
        cut = display_text("x" * 1_000_000, 50)
        self.assertEqual((len(cut), cut[-3:]), (50, "..."))
        self.assertEqual(display_text(" " * 10_000 + "tail", 20), "...")  # cut, and says so
        self.assertEqual(display_text("<b>ok</b>", 20), "<b>ok</b>", "markup is the page's job")

    def test_error_text_cut_and_valid_utf8(self) -> None:
        """
        A 1 MB error text is cut to 1,000 characters, and its lone
        surrogates (invalid UTF-8) become escapes: the text encodes as
        UTF-8; so does the text naming dropped timers of 1 MB names.
        """
        text = describe_error(ValueError(EVIL))
        self.assertEqual(len(text), MAX_ERROR_LENGTH)
        text.encode("utf-8")
        self.assertIn("\\udcff\\udcfe", text)
        self.assertEqual(cut_error("e\udcff"), "e\\udcff")
        _, dropped = clean_timers({"T" * 1_000_000: "x"})
        self.assertEqual(len(cut_error(dropped)), MAX_ERROR_LENGTH)


class SummaryTextTests(SynchronousTestCase):
    def test_table(self) -> None:
        """
        The summary table of hostile error texts and timer names has no
        raw control character, no line longer than 200 characters, and
        encodes as UTF-8 (a lone surrogate would stop the print).
        """
        table = format_table(hostile_summary())
        table.encode("utf-8")
        self.assertIsNone(RAW_CONTROLS.search(table), RAW_CONTROLS.findall(table))
        self.assertLess(max(len(line) for line in table.splitlines()), 200)
        self.assertIn("\\x1b[2J", table)

    def test_json(self) -> None:
        """
        The summary JSON of texts with lone surrogates (a timer name) is
        valid for a strict reader (orjson), the texts otherwise kept.
        """
        data = hostile_summary().to_dict()
        data["custom_timers"]["bad \udcff"] = 1
        text = json.dumps(json_safe(data))
        loaded = orjson.loads(text)
        self.assertIn("bad \\udcff", loaded["custom_timers"])
        self.assertIn(TIMER, loaded["custom_timers"])

    def test_report(self) -> None:
        """
        The HTML report of hostile texts (in errors, timers and settings)
        escapes and cuts them, and shows their control characters inert.
        """
        summary = hostile_summary()
        page = report.render(report.ReportData(
            title="Run report: <i>x</i>", settings=(("Config warnings", EVIL),),
            summary=summary, timeline={"end": [1.0], "timers": {}},
            top_errors=summary.top_errors))
        check_page(self, page)


class CSVInertTests(SynchronousTestCase):
    def test_inert_cell(self) -> None:
        """
        A text cell beginning with =, +, -, @, a tab or a carriage return
        gets a ' before it; others are kept.
        """
        for text in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
            self.assertEqual(inert_cell(text), "'" + text)
        for text in ("ValueError: =1", "", "'=x", "1"):
            self.assertEqual(inert_cell(text), text)

    def test_results_csv(self) -> None:
        """
        Error cells and timer names in the header that begin like a
        formula are made inert, from results and from frames alike (byte
        for byte); numbers, a negative timer too, stay numbers.
        """
        results = [result("=HYPERLINK(\"x\")", negative=-0.5), result("", **{TIMER: 0.001}),
                   result("@SUM(A1)\x00\x1b"), result("-1+1")]
        direct = CSVFormat().encode(results)
        via = FramesToCSV().convert(b"\n".join(encode_result(r) for r in results))
        self.assertEqual(via, direct)
        rows = list(csv.reader(io.StringIO(direct.decode("utf-8"), newline="")))
        self.assertEqual(rows[0][4:], ["negative", "'" + TIMER])
        self.assertEqual([row[3] for row in rows[1:]],
                         ["'=HYPERLINK(\"x\")", "", "'@SUM(A1)\x00\x1b", "'-1+1"])
        self.assertEqual(rows[1][4], "-0.5")
        self.assertEqual(rows[1][2], "0.25")


class _Evil(protocol.Protocol):
    """Answers every request with the hostile header and body."""

    def __init__(self) -> None:
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        assert self.transport is not None
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Evil: %s\r\n\r\n%s"
                % (len(EVIL_BODY), EVIL_HEADER, EVIL_BODY)
            )


class EvilTarget(protocol.Factory):
    protocol = _Evil

    def buildProtocol(self, addr: Any) -> _Evil:
        return _Evil()


class HostileTextEndToEnd(TestCase):
    timeout = 120

    def setUp(self) -> None:
        port: IListeningPort = reactor.listenTCP(0, EvilTarget(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.url = f"http://127.0.0.1:{port.getHost().port}/"
        self.folder = Path(self.mktemp()).absolute()

    def turret(self, *args: str, hq: FakeHQ | None = None) -> TurretProcess:
        hq_keys = hq.turret_config() if hq is not None else {
            "hq_address": None, "hq_publisher": None, "hq_rc": None}
        config = write_config(self.folder, script="hostile_text.py", url=self.url, cannons=2,
                              pacing=0.05, **hq_keys)
        turret = TurretProcess(["-c", str(config), *args], cwd=self.folder)
        self.addCleanup(turret.cleanup)
        return turret

    def check_csv(self, path: Path) -> list[dict[str, str]]:
        """
        The CSV results file of the hostile script: hostile timer names
        and error texts inert, numbers numbers; its rows.
        """
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        self.assertIn("'" + TIMER, header)
        self.assertIn("'-" + "L" * 100_000, header)
        for row in body:
            for cell in row:
                self.assertFalse(cell.startswith(("=", "+", "@", "\t", "\r")), cell)
            error = row[3]
            self.assertLessEqual(len(error), MAX_ERROR_LENGTH + 1)
            float(row[0]), float(row[1]), float(row[2])
        negative = header.index("negative")
        self.assertEqual({row[negative] for row in body}, {"-0.5"})
        errors = [row[3] for row in body if row[3]]
        self.assertTrue(any(e.startswith("'=HYPERLINK") for e in errors), errors[:3])
        self.assertTrue(any(e.startswith("ValueError: =HYPERLINK") for e in errors), errors[:3])
        return [dict(zip(header, row)) for row in body]

    async def test_standalone_outputs(self) -> None:
        """
        A standalone run of the hostile script against the hostile target,
        with --results (CSV), --report and --summary-json: it exits 0 (a
        third succeed), with no traceback; the printed summary has no raw
        control character and no line past 200 characters; the JSON loads
        in a strict reader; the CSV is inert and has a row per
        transaction; the report shows the texts escaped, inert and cut.
        """
        turret = self.turret("--standalone", "--duration", "2", "--results", "r.csv",
                             "--report", "r.html", "--summary-json", "s.json")
        self.assertEqual(await turret.wait_exit(60), 0, turret.output)
        out = turret.output
        self.assertNotIn("Traceback", out)
        table = out[out.index("Run summary"):]
        table = table[: table.index("Results: ")]
        self.assertIsNone(RAW_CONTROLS.search(table), RAW_CONTROLS.findall(table)[:5])
        self.assertLess(max(len(line) for line in table.splitlines()), 200)
        self.assertIn("\\x1b[31m\\u", table)  # the timer name's escapes, inert
        self.assertIn("\\udcff\\udcfe", table)
        summary = orjson.loads((self.folder / "s.json").read_bytes())
        self.assertGreater(summary["errors"], 0)
        self.assertGreater(summary["transactions"], summary["errors"])
        self.assertIn(TIMER, summary["custom_timers"])
        for error, _ in summary["top_errors"]:
            self.assertLessEqual(len(error), MAX_ERROR_LENGTH)
        rows = self.check_csv(self.folder / "r.csv")
        self.assertEqual(len(rows), summary["transactions"])
        check_page(self, (self.folder / "r.html").read_text(encoding="utf-8"))

    async def test_hq_results_file(self) -> None:
        """
        Obeying an HQ, the hostile results reach the HQ as valid JSON, and
        the CSV results file made from the frames (by the file's own
        process) is inert in the same way, one row per result sent.
        """
        hq = FakeHQ()
        hq.start()
        self.addCleanup(hq.stop)
        turret = self.turret("--results", "run.csv", hq=hq)
        await hq.wait_for_status("ready", turret.uuid)
        await hq.handshake(turret.uuid)
        hq.publish("start", "open fire")
        await hq.wait_for_results(12, timeout=60)
        hq.publish("kill", None)
        self.assertEqual(await turret.wait_exit(60), 0, turret.output)
        self.assertNotIn("Traceback", turret.output)
        made = int(re.search(r"turret killed: (\d+) results", turret.output)[1])
        await hq.wait_for_results(made, timeout=60)
        [path] = self.folder.glob("run-*.csv")
        rows = self.check_csv(path)
        self.assertEqual(len(rows), made)
        self.assertTrue(any(r["error"].startswith("'=HYPERLINK") for r in rows))
