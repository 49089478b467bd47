"""
The machinery of a session: :class:`Run`, the outcomes of one run of the
kit, shared by the sessions' threads, and :class:`Session`, one turret
process against one HQ of its own (fresh ports), owning some checks: it
launches the turret, waits for its statuses and results within the
kit's bounds, and records its checks' outcomes.

A check whose session could not reach it (the turret died or never came
up) is skipped, with the reason; the check that met the problem fails.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import zmq

from octtwisted.conformance import scripts
from octtwisted.conformance.bounds import Bounds
from octtwisted.conformance.checks import (
    CHECKS,
    CHECKS_BY_NAME,
    FAIL,
    PASS,
    SKIP,
    CheckResult,
)
from octtwisted.conformance.hq import Frame, TurretProcess, WireHQ, pump, wait_for
from octtwisted.conformance.launcher import TurretLauncher
from octtwisted.conformance.messages import short


def _first(frames: list[Frame]) -> Frame | None:
    return frames[0] if frames else None


def _last(frames: list[Frame]) -> Frame | None:
    return frames[-1] if frames else None


class Run:
    """
    One run of the kit: the outcomes, shared by the sessions' threads.
    """

    def __init__(self, launcher: TurretLauncher, workdir: Path, script: Path | None,
                 failing: Path | None, bounds: Bounds) -> None:
        self.launcher = launcher
        self.workdir = workdir
        #: The kit's own scripts are used (the checks know what they do).
        self.default_script = script is None
        self.script = script or scripts.SUCCEEDS
        if failing is None and script is None:
            failing = scripts.FAILS
        self.default_failing = failing == scripts.FAILS
        self.failing = failing
        self.bounds = bounds
        self.context: zmq.Context[Any] = zmq.Context()
        self._lock = threading.Lock()
        self._outcomes: dict[str, CheckResult] = {}
        self.frames: list[Frame] = []

    def record(self, name: str, outcome: str, detail: str) -> None:
        with self._lock:
            if name not in self._outcomes:
                self._outcomes[name] = CheckResult(CHECKS_BY_NAME[name], outcome, detail)

    def has(self, name: str) -> bool:
        with self._lock:
            return name in self._outcomes

    def add_frames(self, frames: list[Frame]) -> None:
        with self._lock:
            self.frames.extend(frames)

    def results(self) -> tuple[CheckResult, ...]:
        return tuple(self._outcomes.get(c.name) or CheckResult(c, SKIP, "not run") for c in CHECKS)


class Session:
    """
    One turret process against one HQ, owning some checks.
    """

    label = ""
    owns: tuple[str, ...] = ()

    def __init__(self, run: Run) -> None:
        self.run = run
        self.b = run.bounds
        self.hq = WireHQ(run.context)
        self.folder = run.workdir / self.label
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = f"conformance-{self.label}"
        self.process: TurretProcess | None = None
        self.given_uuid = str(uuidlib.uuid4())
        self.uuid = self.given_uuid
        self.reason = "not reached"

    # -- outcomes ------------------------------------------------------

    def set(self, name: str, ok: bool, detail: str) -> None:
        self.run.record(name, PASS if ok else FAIL, detail)

    def skip(self, name: str, detail: str) -> None:
        self.run.record(name, SKIP, detail)

    # -- the turret ------------------------------------------------------

    def script(self) -> Path:
        return self.run.script

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cannons": self.b.cannons,
            "rampup": self.b.rampup,
            "script": self.script().name,
            **self.hq.config_keys(),
        }

    def launch(self) -> Frame | None:
        """
        Start the turret and wait for its first 'ready' (publishing
        nothing). Sets :attr:`uuid` from it. None: it never came.
        """
        import json

        shutil.copy(self.script(), self.folder / self.script().name)
        config_path = self.folder / "config.json"
        config_path.write_text(json.dumps(self.config(), indent=1))
        started = time.monotonic()
        try:
            popen = self.run.launcher.start(config_path, self.given_uuid)
        except OSError as e:
            self.reason = f"could not start the turret: {e}"
            return None
        self.process = TurretProcess(popen, self.folder / "turret.log")
        ready = wait_for(self.hq, lambda: self.first_status("ready"), self.b.start, self.process)
        if ready is None:
            if not self.process.alive:
                self.reason = f"the turret exited with status {self.process.exit_code} before it was ready{self.output()}"
            else:
                seen = [f.data.get("status") for f in self.hq.statuses()]
                self.reason = f"no status 'ready' within {self.b.start:g}s of the launch (statuses seen: {short(seen)}){self.output()}"
            return None
        self.ready_after = time.monotonic() - started
        uuid = ready.data.get("uuid")
        if isinstance(uuid, str) and uuid:
            self.uuid = uuid
        return ready

    def output(self) -> str:
        last = self.process.last_output() if self.process else ""
        return f"; last output: {last}" if last else ""

    def alive(self, after: str) -> bool:
        """
        Whether the turret still runs; if not, the reason why the rest of
        the session is not reached.
        """
        assert self.process is not None
        if self.process.alive:
            return True
        self.reason = f"the turret exited with status {self.process.exit_code} after {after}{self.output()}"
        return False

    def died(self) -> str:
        assert self.process is not None
        return f"the turret exited with status {self.process.exit_code}{self.output()}"

    # -- waiting ---------------------------------------------------------

    def first_status(self, status: str, after: int = 0) -> Frame | None:
        for frame in self.hq.statuses(after):
            if frame.data.get("status") == status:
                return frame
        return None

    def wait_status(self, status: str, after: int, timeout: float) -> Frame | None:
        return wait_for(self.hq, lambda: self.first_status(status, after), timeout, self.process)

    def wait_results(self, after: int, count: int, timeout: float) -> list[Frame]:
        def enough() -> list[Frame] | None:
            found = self.hq.results(after)
            return found if len(found) >= count else None

        wait_for(self.hq, enough, timeout, self.process)
        return self.hq.results(after)

    def mark(self) -> int:
        return len(self.hq.frames)

    def handshake(self) -> Frame | None:
        """
        Publish a broadcast status_request every 0.25 s until a status
        arrives (then the turret hears our orders: PUB drops what it sends
        before a subscriber joined). None: no answer within the bound.
        """
        mark = self.mark()
        deadline = time.monotonic() + self.b.handshake
        while time.monotonic() < deadline:
            self.hq.publish("status_request")
            answer = wait_for(self.hq, lambda: _last(self.hq.statuses(mark)), 0.25, self.process)
            if answer is not None:
                return answer
            if self.process is not None and not self.process.alive:
                return None
        return None

    def probe(self, topic: str) -> float | None:
        """
        One status_request (broadcast or addressed); the seconds its answer
        took, or None if none came within the bound.
        """
        pump(self.hq, 0.05)
        mark = self.mark()
        sent = self.hq.publish("status_request", None, topic)
        answer = wait_for(self.hq, lambda: _first(self.hq.statuses(mark)), self.b.answer, self.process)
        return None if answer is None else answer.at - sent

    # -- the whole session -------------------------------------------------

    def __call__(self) -> None:
        try:
            self.body()
        except Exception as e:  # a bug of the kit: say so, do not hide it
            for name in self.owns:
                self.run.record(name, FAIL, f"the kit failed: {e!r}")
        finally:
            if self.process is not None:
                self.process.end(self.b.grace)
            self.hq.receive(0)
            self.run.add_frames(self.hq.frames)
            self.hq.close()
            for name in self.owns:
                self.skip(name, f"not reached: {self.reason}")

    def body(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """
        Ask the turret to go, politely (what is left is ended at the end).
        """
        if self.process is not None and self.process.alive:
            self.hq.publish("kill", None)
            self.process.wait_exit(min(2.0, self.b.exit))

