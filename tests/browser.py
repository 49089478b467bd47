"""
Opening an HTML file in headless Chromium from a test: a screenshot, the
DOM after the page's scripts ran (with a probe's measurements), and every
network request the page tried.

Every request Chromium makes goes to a recording proxy on 127.0.0.1
(``--proxy-server``, loopback included), which answers nothing; so a page
that fetched anything, from anywhere, shows up in :attr:`Page.requests`.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import protocol, reactor
from twisted.internet.utils import getProcessOutputAndValue

from octtwisted._stats.report import script_hash

#: Chromium's flags for a quiet, isolated headless run.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-component-extensions-with-background-pages",
    "--no-pings",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,Translate",
]

#: Appended to the page: once loaded, writes each chart's rendering and
#: size, and the resources and CSP violations seen, into <pre id="probe">.
PROBE = """
(function () {
  var violations = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    violations.push(e.blockedURI || String(e.violatedDirective));
  });
  window.addEventListener("load", function () {
    setTimeout(function () {
      var charts = [];
      var nodes = document.querySelectorAll(".chart");
      for (var i = 0; i < nodes.length; i++) {
        var canvas = nodes[i].querySelector("canvas");
        var box = canvas ? canvas.getBoundingClientRect() : {width: 0, height: 0};
        charts.push({rendered: nodes[i].getAttribute("data-rendered"),
                     width: box.width, height: box.height});
      }
      var pre = document.createElement("pre");
      pre.id = "probe";
      pre.textContent = JSON.stringify({
        charts: charts,
        resources: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
        violations: violations,
        scripts_alerted: window.__alerted || 0
      });
      document.body.appendChild(pre);
    }, 200);
  });
})();
"""


#: Hosts Chromium itself calls (component updates, sign-in) even with the
#: flags above; a request to them is the browser's, not the page's.
BROWSER_HOSTS = ("update.googleapis.com", "accounts.google.com", "clients2.google.com")


def page_requests(requests: list[str]) -> list[str]:
    """
    The requests that are not Chromium's own (see :data:`BROWSER_HOSTS`).
    """

    def host(line: str) -> str:
        target = line.split(" ")[1] if " " in line else line
        target = target.split("://", 1)[-1]
        return target.split("/", 1)[0].split(":", 1)[0]

    return [line for line in requests if host(line) not in BROWSER_HOSTS]


def chromium() -> str | None:
    """
    The Chromium executable, or None.
    """
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


MISSING = (
    "headless Chromium is not installed (Debian: apt-get install -y chromium; "
    "`make test` installs it when run as root)"
)


class _Recorder(protocol.Protocol):
    def connectionMade(self) -> None:
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if b"\r\n" in self.data:
            self.factory.requests.append(  # type: ignore[attr-defined]
                self.data.split(b"\r\n", 1)[0].decode("latin-1")
            )
            self.transport.loseConnection()


@attrs.define
class Page:
    """
    :ivar dom: the page's HTML after its scripts ran.
    :ivar probe: what :data:`PROBE` measured (None if it did not run).
    :ivar requests: the first line of every request that reached the proxy
        (Chromium's own included: see :func:`page_requests`).
    :ivar screenshot: the PNG's path.
    """

    dom: str
    probe: dict[str, Any] | None
    requests: list[str]
    screenshot: Path


def with_scripts(page: str, *scripts: str) -> str:
    """
    ``page`` (a report) with ``scripts`` (their sources) appended before
    ``</body>``, and allowed to run by the page's Content Security Policy,
    if it has one (their hashes added to its ``script-src``): the test's
    own scripts, and no other.
    """
    allowed = " ".join(script_hash(source) for source in scripts)
    assert page.count("script-src ") <= 1, "a CSP names its scripts once"
    page = page.replace("script-src ", f"script-src {allowed} ", 1)
    tags = "".join(f"<script>{source}</script>" for source in scripts)
    return page.replace("</body>", tags + "</body>")


async def open_page(html_file: Path, work: Path, *, width: int = 1280, height: int = 2400) -> Page:
    """
    Open ``html_file`` (a copy with :data:`PROBE` appended) in headless
    Chromium: dump its DOM, then take a screenshot.
    """
    executable = chromium()
    assert executable is not None, MISSING
    work.mkdir(parents=True, exist_ok=True)
    probed = work / "probed.html"
    text = html_file.read_text(encoding="utf-8")
    probed.write_text(with_scripts(text, PROBE), encoding="utf-8")
    factory = protocol.ServerFactory()
    factory.protocol = _Recorder
    factory.requests = []  # type: ignore[attr-defined]
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        proxy = f"--proxy-server=http://127.0.0.1:{port.getHost().port}"
        common = FLAGS + [proxy, "--proxy-bypass-list=<-loopback>", f"--window-size={width},{height}"]
        out, err, code = await getProcessOutputAndValue(
            executable,
            common + [f"--user-data-dir={work / 'profile-dom'}", "--virtual-time-budget=5000",
                      "--dump-dom", probed.as_uri()],
            env={"HOME": str(work)},
        )
        assert code == 0, (code, err.decode(errors="replace")[-2000:])
        screenshot = work / "screenshot.png"
        _, err2, code2 = await getProcessOutputAndValue(
            executable,
            common + [f"--user-data-dir={work / 'profile-shot'}", "--virtual-time-budget=5000",
                      f"--screenshot={screenshot}", probed.as_uri()],
            env={"HOME": str(work)},
        )
        assert code2 == 0, (code2, err2.decode(errors="replace")[-2000:])
    finally:
        await port.stopListening()
    dom = out.decode("utf-8", "replace")
    probe = None
    start = dom.find('<pre id="probe">')
    if start >= 0:
        end = dom.index("</pre>", start)
        probe = json.loads(html.unescape(dom[start + len('<pre id="probe">'):end]))
    return Page(dom=dom, probe=probe, requests=list(factory.requests), screenshot=screenshot)
