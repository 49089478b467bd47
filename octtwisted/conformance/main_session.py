"""
The ``main`` session: announce, config, status requests, the storm, the
context, start, the results, the rampup, stop, a second start, kill.
"""

from __future__ import annotations

import time
from typing import Any

from octtwisted.conformance import scripts
from octtwisted.conformance.hq import Frame, pump
from octtwisted.conformance.messages import (
    is_number,
    result_problems,
    short,
    status_problems,
)
from octtwisted.conformance.session import Session


class MainSession(Session):
    label = "main"
    owns = (
        "announces-ready", "reads-config", "status-request-broadcast", "status-storm",
        "set-transaction-context", "context-reaches-transaction", "start-running",
        "result-keys", "result-turret-name", "result-epoch", "result-elapsed", "rampup-spread",
        "stop-ready", "no-results-after-stop", "second-start", "kill-reports-killed", "kill-exits",
    )

    def body(self) -> None:
        b = self.b
        ready = self.launch()
        if ready is None:
            self.set("announces-ready", False, self.reason)
            return
        problems = status_problems(ready.data)
        self.set(
            "announces-ready", not problems,
            f"'ready' {self.ready_after:.2f}s after the launch" if not problems else "; ".join(problems),
        )
        self.check_config(ready.data)

        answered = self.handshake()
        latencies = [self.probe("") for _ in range(2)]
        if answered is None or None in latencies:
            if not self.alive("status requests"):
                self.set("status-request-broadcast", False, self.died())
                return
            self.set("status-request-broadcast", False,
                     f"no answer to a broadcast status_request within {b.answer:g}s" if answered
                     else f"no answer to broadcast status_requests repeated for {b.handshake:g}s")
        else:
            self.set("status-request-broadcast", True,
                     "answered in " + ", ".join(f"{x:.2f}s" for x in latencies if x is not None))

        self.storm()
        if not self.alive("the status_request storm"):
            return

        context = {scripts.TIMER_KEY: scripts.CONTEXT_TIMER, "conformance": True}
        self.hq.publish("set_transaction_context", context)
        answer = self.handshake()
        if not self.alive("set_transaction_context"):
            self.set("set-transaction-context", False, self.died())
            return
        self.set("set-transaction-context", answer is not None,
                 "still answers" if answer else "no answer to status_request after set_transaction_context")
        if answer is None:
            self.reason = "the turret no longer answers"

        self.first_run()
        if not self.alive("the first run"):
            return
        self.stop_and_second_start()
        if not self.alive("the second start"):
            return
        self.kill_check()

    def check_config(self, status: dict[str, Any]) -> None:
        wrong = []
        for key, want in (("turret", self.name), ("cannons", self.b.cannons)):
            if status.get(key) != want:
                wrong.append(f"{key} is {status.get(key)!r}, the config says {want!r}")
        rampup = status.get("rampup")
        if not (isinstance(rampup, (int, float)) and is_number(rampup) and abs(rampup - self.b.rampup) <= 1e-9):
            wrong.append(f"rampup is {rampup!r}, the config says {self.b.rampup!r}")
        if self.run.launcher.passes_uuid and status.get("uuid") != self.given_uuid:
            wrong.append(f"uuid is {status.get('uuid')!r}, it was given {self.given_uuid!r}")
        self.set("reads-config", not wrong, "; ".join(wrong) or "name, cannons, rampup and uuid as configured")

    def storm(self) -> None:
        """
        Emulate the HQ's wait loop: a status_request at once after every
        message received (and after 2 s of silence).
        """
        b = self.b
        pump(self.hq, 0.6)
        mark = self.mark()
        limit = int(3 * b.storm + 2)
        began = time.monotonic()
        deadline = began + b.storm
        requests = 1
        self.hq.publish("status_request")
        while (left := deadline - time.monotonic()) > 0:
            got = self.hq.receive(min(left, 2.0))
            for _ in range(max(got, 1)):  # one per message, or one after 2 s of silence
                self.hq.publish("status_request")
                requests += 1
            if self.process is not None and not self.process.alive:
                break
            if len(self.hq.frames) - mark > 20 * limit:
                break  # answering every request: proven, no need to go on
        answers = len(self.hq.statuses(mark))
        took = time.monotonic() - began
        pump(self.hq, 0.6)  # a coalesced answer still due
        if self.process is not None and not self.process.alive:
            self.set("status-storm", False, self.died() + " during the storm")
        elif answers == 0:
            self.set("status-storm", False, f"no answer in {b.storm:g}s of status_requests")
        else:
            self.set("status-storm", answers <= limit,
                     f"{answers} answers to {requests} status_requests in {took:.2f}s (at most {limit} in {b.storm:g}s)")

    def first_run(self) -> None:
        b = self.b
        mark = self.mark()
        started = self.hq.publish("start", "open fire")
        running = self.wait_status("Running", mark, b.results)
        first = self.wait_results(mark, 1, b.results)
        if running is None or not first:
            if not self.alive("start"):
                self.set("start-running", False, self.died())
                return
            self.set("start-running", False, "no status 'Running'" if running is None
                     else f"'Running' but no result within {b.results:g}s of start")
            if not first:
                self.reason = "no results"
                return
        # Results for the whole rampup and a quarter more after it.
        window = b.rampup * 1.25 + 0.35
        pump(self.hq, max(0.0, first[0].at + window - time.time()))
        results = self.hq.results(mark)
        if running is not None:
            self.set("start-running", True,
                     f"'Running' {running.at - started:.2f}s and a first result {first[0].at - started:.2f}s after start")
        self.check_results(results, started)

    def check_results(self, results: list[Frame], started: float) -> None:
        n = len(results)
        bad = [(f, result_problems(f.data)) for f in results]
        bad = [(f, p) for f, p in bad if p]
        self.set("result-keys", not bad,
                 f"{n} results, six keys, right types" if not bad
                 else f"{len(bad)} of {n} results: {'; '.join(bad[0][1])}")
        names = [f.data.get("turret_name") for f in results if f.data.get("turret_name") != self.name]
        self.set("result-turret-name", not names,
                 f"{n} results named {self.name!r}" if not names
                 else f"{len(names)} of {n} results have turret_name {short(names[0])}, not {self.name!r}")
        epochs = [f for f in results if isinstance(f.data.get("epoch"), float)]
        worst = max((abs(f.data["epoch"] - f.at) for f in epochs), default=None)
        if len(epochs) < n:
            self.set("result-epoch", False, f"{n - len(epochs)} of {n} results have no float as epoch")
        else:
            assert worst is not None
            self.set("result-epoch", worst <= 2.0, f"at most {worst:.3f}s from the receive time")
        lags = [(f.at - started) - f.data["elapsed"] for f in results if is_number(f.data.get("elapsed"))]
        if len(lags) < n:
            self.set("result-elapsed", False, f"{n - len(lags)} of {n} results have no number as elapsed")
        else:
            low, high = min(lags), max(lags)
            ok = low >= -0.5 and high <= 1.5
            self.set("result-elapsed", ok,
                     f"time since start minus elapsed: {low:+.3f}s to {high:+.3f}s (allowed -0.5 to +1.5)")
        if self.run.default_script:
            timers = [f for f in results if isinstance(f.data.get("custom_timers"), dict)
                      and scripts.CONTEXT_TIMER in f.data["custom_timers"]]
            self.set("context-reaches-transaction", len(timers) == n,
                     f"{len(timers)} of {n} results timed {scripts.CONTEXT_TIMER!r}, the timer name the context gave")
        else:
            self.skip("context-reaches-transaction", "a script of your own: the kit cannot see the context")
        self.check_rampup(results)

    def check_rampup(self, results: list[Frame]) -> None:
        b = self.b
        if b.rampup <= 0 or b.cannons < 2:
            self.skip("rampup-spread", "no rampup configured")
            return
        t0 = results[0].at
        quarter = b.rampup / 4
        early = sum(1 for f in results if f.at < t0 + quarter)
        late_from = t0 + b.rampup + 0.1
        late = sum(1 for f in results if late_from <= f.at < late_from + quarter)
        if late == 0:
            self.set("rampup-spread", False, f"no results {b.rampup:g}s after the first one")
            return
        ratio = early / late
        self.set("rampup-spread", ratio < 0.6,
                 f"{early} results in the first {quarter:g}s, {late} in {quarter:g}s after the rampup "
                 f"({ratio:.0%} of the full rate; under 60% wanted)")

    def stop_and_second_start(self) -> None:
        b = self.b
        mark = self.mark()
        sent = self.hq.publish("stop", "premature stop")
        ready = self.wait_status("ready", mark, b.stop)
        if ready is None:
            self.set("stop-ready", False, self.died() if not self.alive("stop") else f"no 'ready' within {b.stop:g}s of stop")
            self.reason = "the turret did not stop"
            return
        self.set("stop-ready", True, f"'ready' {ready.at - sent:.2f}s after stop")
        at_ready = self.hq.frames.index(ready) + 1
        pump(self.hq, b.quiet)
        late = self.hq.results(at_ready)
        self.set("no-results-after-stop", not late,
                 f"no result in the {b.quiet:g}s after that 'ready'" if not late
                 else f"{len(late)} results arrived after the 'ready' that followed stop")
        if not self.alive("stop"):
            return
        self.handshake()
        mark = self.mark()
        started = self.hq.publish("start", "open fire")
        running = self.wait_status("Running", mark, b.results)
        results = self.wait_results(mark, 1, b.results)
        if running is None or not results:
            detail = self.died() if not self.alive("the second start") else (
                "no status 'Running'" if running is None else f"no result within {b.results:g}s")
            self.set("second-start", False, detail + " after the second start")
            return
        self.set("second-start", True, f"'Running' and a result {results[0].at - started:.2f}s after the second start")

    def kill_check(self) -> None:
        b = self.b
        assert self.process is not None
        mark = self.mark()
        sent = self.hq.publish("kill", None)
        killed = self.wait_status("Killed", mark, b.stop)
        self.set("kill-reports-killed", killed is not None,
                 f"'Killed' {killed.at - sent:.2f}s after kill" if killed
                 else f"no status 'Killed' within {b.stop:g}s of kill")
        code = self.process.wait_exit(max(0.0, sent + b.exit - time.time()))
        self.set("kill-exits", code is not None,
                 f"exited with status {code} {time.time() - sent:.2f}s after kill" if code is not None
                 else f"still running {b.exit:g}s after kill")

