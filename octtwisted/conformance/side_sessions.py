"""
The four small sessions, each a turret of its own beside ``main``:

- ``addressed``: orders addressed to the turret's uuid and to another.
- ``two-frame``: a two-frame message on the orders socket.
- ``garbage``: junk on the orders socket (:data:`GARBAGE`), then start.
- ``term``: the failing script's error results, then SIGTERM.
"""

from __future__ import annotations

import signal
import time
import uuid as uuidlib
from pathlib import Path

from octtwisted.conformance import scripts
from octtwisted.conformance.hq import pump
from octtwisted.conformance.messages import short
from octtwisted.conformance.session import Session

#: Frames that are not orders, sent to the turret by ``garbage-orders``.
#: None of them names start, stop or kill as a valid order.
GARBAGE: tuple[bytes | list[bytes], ...] = (
    b"",
    b" ",
    b"no-space-at-all",
    b" not json",
    b" {",
    b" []",
    b' "a string"',
    b" 42",
    b" null",
    b" \xff\xfe\xfd",
    b"\xff\xfe {}",
    b"\x00\x01\x02 \x00",
    b' {"msg": null}',
    b' {"command": null, "msg": null}',
    b' {"command": 42, "msg": null}',
    b' {"command": ["start"], "msg": "open fire"}',
    b' {"command": {"kill": 1}, "msg": null}',
    b' {"command": "self-destruct", "msg": 1}',
    b' {"command": "", "msg": ""}',
    b' {"command": "set_transaction_context", "msg": "not an object"}',
    b' {"command": "set_transaction_context", "msg": [1, 2]}',
    b' {"command": "set_transaction_context"}',
    b' {"command": "status_request"}',
    b" " + b"[" * 100_000,
    b" " + b"x" * (1 << 20),
    [b"", b"{", b"three frames"],
    [b" not", b" json"],
)


class AddressedSession(Session):
    label = "addressed"
    owns = ("status-request-addressed", "addressed-start")

    def body(self) -> None:
        b = self.b
        if self.launch() is None:
            return
        self.handshake()
        latencies = [self.probe(self.uuid) for _ in range(2)]
        if None in latencies:
            detail = self.died() if not self.alive("an addressed status_request") else (
                f"no answer within {b.answer:g}s to a status_request addressed to {self.uuid}")
            self.set("status-request-addressed", False, detail)
            if not self.process or not self.process.alive:
                return
        else:
            self.set("status-request-addressed", True,
                     "answered in " + ", ".join(f"{x:.2f}s" for x in latencies if x is not None))

        other = str(uuidlib.uuid4())
        mark = self.mark()
        self.hq.publish("start", "open fire", other)
        self.hq.publish("kill", None, other)
        pump(self.hq, b.quiet)
        answer = self.handshake()
        if not self.alive("orders addressed to another turret"):
            self.set("addressed-start", False, self.died() + " after start and kill addressed to another uuid")
            return
        obeyed = self.hq.results(mark) or self.first_status("Running", mark)
        if obeyed or answer is None or answer.data.get("status") != "ready":
            self.set("addressed-start", False,
                     "obeyed a start addressed to another uuid" if obeyed
                     else f"not 'ready' after orders to another uuid: {short(answer.data if answer else None)}")
            return
        mark = self.mark()
        self.hq.publish("start", "open fire", self.uuid)
        running = self.wait_status("Running", mark, b.results)
        self.set("addressed-start", running is not None,
                 "ignored another uuid's start and kill, obeyed its own start" if running
                 else f"no 'Running' within {b.results:g}s of a start addressed to {self.uuid}")
        self.kill()


class TwoFrameSession(Session):
    label = "two-frame"
    owns = ("two-frame-order",)

    def body(self) -> None:
        if self.launch() is None:
            return
        self.handshake()
        self.hq.publish_raw([b"", b'{"command": "status_request", "msg": null}'])
        pump(self.hq, 0.3)
        answer = self.handshake()
        if not self.alive("a two-frame order"):
            self.set("two-frame-order", False, self.died() + " after a two-frame order")
            return
        self.set("two-frame-order", answer is not None,
                 "still answers" if answer else "no answer after a two-frame order")
        self.kill()


class GarbageSession(Session):
    label = "garbage"
    owns = ("garbage-orders",)

    def body(self) -> None:
        b = self.b
        if self.launch() is None:
            return
        self.handshake()
        kinds = len(GARBAGE)
        for number, frames in enumerate(GARBAGE, 1):
            self.hq.publish_raw(frames)
            pump(self.hq, 0.02)
            if not self.alive("garbage orders"):
                self.set("garbage-orders", False,
                         f"{self.died()}, while the kit sent garbage (frames 1 to {number} of {kinds} sent; "
                         f"the last: {short(frames, 40)})")
                return
        pump(self.hq, 0.3)
        answer = self.handshake()
        if not self.alive(f"{kinds} garbage frames"):
            self.set("garbage-orders", False, self.died() + f" after {kinds} kinds of garbage orders")
            return
        if answer is None or answer.data.get("status") != "ready":
            self.set("garbage-orders", False,
                     f"after {kinds} kinds of garbage: " + ("no answer" if answer is None else f"status {answer.data.get('status')!r}"))
            return
        mark = self.mark()
        self.hq.publish("start", "open fire")
        running = self.wait_status("Running", mark, b.results)
        self.set("garbage-orders", running is not None,
                 f"{kinds} kinds survived; still 'ready', then obeyed start" if running
                 else f"{kinds} kinds survived, but no 'Running' after start")
        self.kill()


class TermSession(Session):
    label = "term"
    owns = ("error-results", "sigterm-exits")

    def script(self) -> Path:
        return self.run.failing or self.run.script

    def body(self) -> None:
        b = self.b
        if self.launch() is None:
            return
        self.handshake()
        mark = self.mark()
        self.hq.publish("start", "open fire")
        results = self.wait_results(mark, 2 * b.cannons, b.results)
        if self.run.failing is None:
            self.skip("error-results", "no failing script: give --failing-script")
        elif not results:
            self.set("error-results", False, self.died() if not self.alive("start")
                     else f"no result within {b.results:g}s of start")
        else:
            want = scripts.FAILING_MESSAGE if self.run.default_failing else ""
            good = [f for f in results if isinstance(f.data.get("error"), str) and f.data["error"] and want in f.data["error"]]
            self.set("error-results", len(good) == len(results) and len(results) >= 2 * b.cannons,
                     f"{len(good)} of {len(results)} results have an error"
                     + (" with the script's text" if want else "")
                     + (f"; e.g. {short(results[0].data.get('error'), 80)}" if len(good) < len(results) else ""))
        if not self.alive("start"):
            self.set("sigterm-exits", False, self.died() + " before SIGTERM")
            return
        assert self.process is not None
        sent = time.time()
        self.process.signal(signal.SIGTERM)
        code = self.process.wait_exit(b.sigterm)
        self.set("sigterm-exits", code is not None,
                 f"exited with status {code} {time.time() - sent:.2f}s after SIGTERM" if code is not None
                 else f"still running {b.sigterm:g}s after SIGTERM")

