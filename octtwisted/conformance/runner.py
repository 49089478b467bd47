"""
Running the checks: five sessions, each a turret process of its own
against an HQ of its own (fresh ports), run in parallel threads.

- ``main``: announce, config, status requests, the storm, the context,
  start, the results, the rampup, stop, a second start, kill.
- ``addressed``: orders addressed to the turret's uuid and to another.
- ``two-frame``: a two-frame message on the orders socket.
- ``garbage``: junk on the orders socket, then start.
- ``term``: the failing script's error results, then SIGTERM.

A check whose session could not reach it (the turret died or never came
up) is skipped, with the reason; the check that met the problem fails.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import attrs
import zmq

from octtwisted.conformance import scripts
from octtwisted.conformance.checks import CHECKS, CHECKS_BY_NAME, FAIL, PASS, SKIP, CheckResult, Report
from octtwisted.conformance.hq import Frame, TurretProcess, WireHQ, pump, wait_for

STATUS_KEYS = frozenset({"turret", "status", "uuid", "rampup", "script", "cannons"})
RESULT_KEYS = frozenset({"turret_name", "elapsed", "epoch", "scriptrun_time", "error", "custom_timers"})

#: ``start_turret(config_path, uuid)``: starts the turret and returns its process.
Launcher = Callable[[Path, str], "subprocess.Popen[bytes]"]


@attrs.frozen
class Bounds:
    """
    How long the kit waits for each thing (seconds), and the turret config
    it writes (cannons, rampup). Every wait of the kit is one of these.
    """

    start: float = 20.0  # launch -> first 'ready'
    handshake: float = 5.0  # repeated status_request -> an answer
    answer: float = 1.5  # one status_request -> its answer
    storm: float = 2.0  # how long the status_request storm lasts
    results: float = 10.0  # start -> 'Running' and results
    stop: float = 10.0  # stop -> 'ready', kill -> 'Killed'
    quiet: float = 1.0  # watched for stray results or orders obeyed
    exit: float = 10.0  # kill -> the process exits
    sigterm: float = 15.0  # SIGTERM -> the process exits
    grace: float = 5.0  # at the end: SIGTERM, then SIGKILL after this
    cannons: int = 4
    rampup: float = 2.0

    def worst_case(self) -> float:
        """
        An upper bound of one run of the kit (its sessions run in
        parallel; the longest is ``main``).
        """
        return (
            self.start
            + 4 * self.handshake
            + 4 * self.answer
            + self.storm
            + 2
            + 2 * self.results
            + self.rampup * 1.3
            + 2 * self.stop
            + 2 * self.quiet
            + self.exit
            + self.grace
            + 10
        )


#: Short bounds, for turrets known to be quick (the kit's own tests).
QUICK = Bounds(
    start=15.0, handshake=3.0, answer=1.5, storm=1.0, results=6.0, stop=6.0,
    quiet=0.6, exit=5.0, sigterm=8.0, grace=2.0, cannons=4, rampup=1.0,
)


@attrs.frozen
class TurretLauncher:
    """
    How the kit starts the turret under test.

    :ivar start: called with the config's path and a uuid; starts the
        turret (cwd: the config's folder) and returns its process.
    :ivar passes_uuid: whether the turret is given that uuid; if not, the
        kit learns the uuid from the turret's first status.
    :ivar description: how it is started, for the report.
    """

    start: Launcher
    passes_uuid: bool = True
    description: str = ""


def command_launcher(command: str) -> TurretLauncher:
    """
    A launcher for a shell-like command line with ``{config}`` (the path
    of the config the kit writes) and optionally ``{uuid}``. The command
    runs in the config's folder, in a session of its own, with ``TMPDIR``
    set to that folder; its output goes to ``turret.log`` there.
    """
    if "{config}" not in command:
        raise ValueError("the turret command must contain {config}")

    def start(config: Path, uuid: str) -> subprocess.Popen[bytes]:
        line = command.replace("{config}", shlex.quote(str(config))).replace("{uuid}", shlex.quote(uuid))
        argv = shlex.split(line)
        if argv and "/" in argv[0] and not os.path.isabs(argv[0]):
            argv[0] = os.path.abspath(argv[0])  # the command runs in the config's folder
        env = dict(os.environ, TMPDIR=str(config.parent), PYTHONUNBUFFERED="1")
        with open(config.parent / "turret.log", "ab") as log:
            return subprocess.Popen(
                argv, cwd=str(config.parent), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )

    return TurretLauncher(start=start, passes_uuid="{uuid}" in command, description=command)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def status_problems(status: dict[str, Any]) -> list[str]:
    """
    What is wrong with a status message, keys beyond the six aside.
    """
    problems = [f"no {key!r}" for key in sorted(STATUS_KEYS - set(status))]
    for key in ("cannons", "rampup"):
        if key in status and not is_number(status[key]):
            problems.append(f"{key} is {status[key]!r}, not a number")
    for key in ("turret", "script", "status", "uuid"):
        if key in status and not isinstance(status[key], str):
            problems.append(f"{key} is {status[key]!r}, not a string")
    uuid = status.get("uuid")
    if isinstance(uuid, str) and (not uuid or " " in uuid):
        problems.append(f"uuid {uuid!r} is empty or has a space")
    return problems


def result_problems(result: dict[str, Any]) -> list[str]:
    """
    What is wrong with a result message: its keys and their types.
    """
    keys = set(result)
    problems = [f"no {key!r}" for key in sorted(RESULT_KEYS - keys)]
    problems += [f"extra key {key!r}" for key in sorted(keys - RESULT_KEYS)]
    for key in ("elapsed", "epoch", "scriptrun_time"):
        if key in result and not is_number(result[key]):
            problems.append(f"{key} is {result[key]!r}, not a number")
    for key in ("turret_name", "error"):
        if key in result and not isinstance(result[key], str):
            problems.append(f"{key} is {result[key]!r}, not a string")
    timers = result.get("custom_timers")
    if "custom_timers" in result:
        if not isinstance(timers, dict):
            problems.append(f"custom_timers is {timers!r}, not an object")
        elif not all(is_number(v) for v in timers.values()):
            problems.append(f"custom_timers {timers!r} has a value that is not a number")
    return problems


def _first(frames: list[Frame]) -> Frame | None:
    return frames[0] if frames else None


def _last(frames: list[Frame]) -> Frame | None:
    return frames[-1] if frames else None


def _short(value: Any, chars: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= chars else text[: chars - 3] + "..."


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


class _Run:
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


class _Session:
    """
    One turret process against one HQ, owning some checks.
    """

    label = ""
    owns: tuple[str, ...] = ()

    def __init__(self, run: _Run) -> None:
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
                self.reason = f"no status 'ready' within {self.b.start:g}s of the launch (statuses seen: {_short(seen)}){self.output()}"
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


class _Main(_Session):
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
        b = self.b
        n = len(results)
        bad = [(f, result_problems(f.data)) for f in results]
        bad = [(f, p) for f, p in bad if p]
        self.set("result-keys", not bad,
                 f"{n} results, six keys, right types" if not bad
                 else f"{len(bad)} of {n} results: {'; '.join(bad[0][1])}")
        names = [f.data.get("turret_name") for f in results if f.data.get("turret_name") != self.name]
        self.set("result-turret-name", not names,
                 f"{n} results named {self.name!r}" if not names
                 else f"{len(names)} of {n} results have turret_name {_short(names[0])}, not {self.name!r}")
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


class _Addressed(_Session):
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
                     else f"not 'ready' after orders to another uuid: {_short(answer.data if answer else None)}")
            return
        mark = self.mark()
        self.hq.publish("start", "open fire", self.uuid)
        running = self.wait_status("Running", mark, b.results)
        self.set("addressed-start", running is not None,
                 "ignored another uuid's start and kill, obeyed its own start" if running
                 else f"no 'Running' within {b.results:g}s of a start addressed to {self.uuid}")
        self.kill()


class _TwoFrame(_Session):
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


class _Garbage(_Session):
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
                         f"the last: {_short(frames, 40)})")
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


class _Term(_Session):
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
                     + (f"; e.g. {_short(results[0].data.get('error'), 80)}" if len(good) < len(results) else ""))
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


SESSIONS: tuple[type[_Session], ...] = (_Main, _Addressed, _TwoFrame, _Garbage, _Term)


def _whole_run_checks(run: _Run) -> None:
    frames = run.frames
    statuses = [f for f in frames if f.kind == "status"]
    results = [f for f in frames if f.kind == "result"]
    junk = [f for f in frames if f.kind == "junk"]
    if not statuses:
        run.record("status-keys", SKIP, "no status received")
    else:
        wrong = [f for f in statuses if set(f.data) != STATUS_KEYS]
        run.record("status-keys", FAIL if wrong else PASS,
                   f"{len(statuses)} statuses, each with exactly the six keys" if not wrong
                   else f"{len(wrong)} of {len(statuses)} statuses have keys {sorted(wrong[0].data)}")
    if not results:
        run.record("no-status-in-results", SKIP, "no result received")
    else:
        misfiled = [f for f in results if f.hq_sees_status]
        carried = sum(1 for f in results if "status" in repr(f.data))
        run.record("no-status-in-results", FAIL if misfiled else PASS,
                   f"{len(results)} results, none with 'status' in its frame ({carried} carry the word, escaped)"
                   if not misfiled else
                   f"{len(misfiled)} of {len(results)} result frames contain 'status': the HQ files them as statuses")
    if not frames:
        run.record("frames-are-json", SKIP, "nothing received")
    else:
        run.record("frames-are-json", FAIL if junk else PASS,
                   f"{len(frames)} frames, each a JSON object" if not junk
                   else f"{len(junk)} of {len(frames)} frames are not JSON objects, e.g. {_short(junk[0].raw, 60)}")


def run_conformance(
    launcher: TurretLauncher,
    workdir: Path,
    *,
    script: Path | None = None,
    failing_script: Path | None = None,
    bounds: Bounds = Bounds(),
    parallel: bool = True,
) -> Report:
    """
    Run every check against the turret that ``launcher`` starts; the
    sessions' files go in ``workdir``. Without ``script``, the kit's
    default Python scripts are used (and its failing one, unless
    ``failing_script`` is given).
    """
    began = time.monotonic()
    run = _Run(launcher, Path(workdir), Path(script) if script else None,
               Path(failing_script) if failing_script else None, bounds)
    try:
        sessions = [kind(run) for kind in SESSIONS]
        if parallel:
            with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
                for future in [pool.submit(s) for s in sessions]:
                    future.result()
        else:
            for session in sessions:
                session()
        _whole_run_checks(run)
    finally:
        run.context.destroy(linger=0)  # closes any socket a failed session left open
    return Report(command=launcher.description, results=run.results(), seconds=time.monotonic() - began)
