"""
A fake OCT HQ for benchmarks: one pyzmq process, no Twisted, no database.

    python bench/hq_sink.py --warmup 3 --window 10 [--mode count|timers|first]

It binds a PUB socket (orders) and a PULL socket (results, HWM 0) on free
127.0.0.1 ports, like the real HQ, and prints one JSON object per line on
stdout:

1. ``{"event": "ports", "pub": P, "pull": Q}`` at once: write the turret's
   config with these (``hq_publisher`` = P, ``hq_rc`` = Q);
2. ``{"event": "ready"}`` when the turret answered (a frame containing
   ``status``; ``status_request`` is published every second until then);
3. ``{"event": "running"}`` when the turret took the ``start`` order (a
   status frame saying ``Running``, or a first result; ``start`` is
   published again every second until then);
4. ``{"event": "window_start"}`` after ``--warmup`` seconds,
   ``{"event": "window_end"}`` after ``--window`` more seconds;
5. ``{"event": "result", ...}``: the counts and rates, after ``stop`` and
   ``kill`` were published (``--no-kill``: ``stop`` only).

Orders are single frames ``"<topic> <json>"`` with the empty topic, as the
real HQ sends them. Result frames are counted without parsing them: any
frame that does not contain ``status`` is a result; a result whose text
has no empty ``error`` is an error. Only the modes that need a field parse
(only) the frames they need:

* ``count``: counts and rates in the window;
* ``timers``: also the ``scriptrun_time`` of every result in the window
  that has the custom timer ``--tag`` (default ``fifty``);
* ``first``: also ``elapsed`` and ``scriptrun_time`` of every result that
  has the custom timer ``--tag`` (default ``first``), from the start until
  ``--expect`` of them arrived or the window closed.

A turret that reports ``Aborted`` or ``Killed`` while firing ends the run
early (``"aborted": true`` in the result).

``--turrets 2`` (``count`` mode) drives two turrets side by side, as one HQ
drives many: one PUB for both, a PULL each (``"pull"`` is then a list, a
turret's index is its PULL's). Both must answer before either is started,
one ``start`` order starts both, and both are counted in the same window:
the result's ``turrets`` has one ``{"results", "errors", "rate",
"error_rate"}`` per turret, in the order of ``pull``. Any status frame
counts as an answer, and a ``Running`` status or a first result from every
turret as started.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import zmq

STATUS = b"status"
EMPTY_ERRORS = (b'"error":""', b'"error": ""')


def order(command: str, msg: object = None) -> bytes:
    return (" " + json.dumps({"command": command, "msg": msg})).encode("utf-8")


def say(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--mode", choices=("count", "timers", "first"), default="count")
    parser.add_argument("--tag", default=None, help="custom timer name to pick results by")
    parser.add_argument("--expect", type=int, default=0, help="first mode: results wanted")
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    parser.add_argument("--start-timeout", type=float, default=60.0)
    parser.add_argument("--no-kill", action="store_true", help="publish stop but not kill")
    parser.add_argument("--dump", default=None, help="also write the frames picked by --tag to this file")
    parser.add_argument("--turrets", type=int, default=1, help="count mode: turrets side by side, a PULL each")
    args = parser.parse_args()
    if args.turrets < 1 or (args.turrets > 1 and args.mode != "count"):
        parser.error("--turrets N > 1 needs --mode count")
    tag = (args.tag or ("fifty" if args.mode == "timers" else "first")).encode()
    quoted_tag = b'"' + tag + b'"'

    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 2000)
    pub_port = pub.bind_to_random_port("tcp://127.0.0.1")
    pulls = []
    poller = zmq.Poller()
    for _ in range(args.turrets):
        pull = context.socket(zmq.PULL)
        pull.setsockopt(zmq.RCVHWM, 0)
        pull.setsockopt(zmq.LINGER, 0)
        pulls.append((pull, pull.bind_to_random_port("tcp://127.0.0.1")))
        poller.register(pull, zmq.POLLIN)
    if args.turrets == 1:
        say("ports", pub=pub_port, pull=pulls[0][1])
    else:
        say("ports", pub=pub_port, pull=[port for _, port in pulls])
    receivers = {pull: (index, pull.recv) for index, (pull, _) in enumerate(pulls)}
    NOBLOCK = zmq.NOBLOCK

    def sourced(timeout_ms: int):
        """(turret index, frame) of the frames available now (waiting up
        to timeout_ms for the first)."""
        for socket, _ in poller.poll(timeout_ms):
            index, recv = receivers[socket]
            for _ in range(5000):
                try:
                    yield index, recv(NOBLOCK)
                except zmq.Again:
                    break

    def frames(timeout_ms: int):
        """The frames available now, from any turret."""
        for _, frame in sourced(timeout_ms):
            yield frame

    statuses: list[str] = []
    dump = open(args.dump, "wb") if args.dump else None

    def note_status(frame: bytes) -> None:
        try:
            statuses.append(json.loads(frame).get("status", "?"))
        except ValueError:
            statuses.append("unparsable")

    # 1. Wait for the turret (every turret) to answer a status request.
    began = time.monotonic()
    answered: set[int] = set()
    next_request = 0.0
    while len(answered) < args.turrets:
        now = time.monotonic()
        if now - began > args.ready_timeout:
            say("result", ok=False, why="no status from the turret", statuses=statuses)
            return 2
        if now >= next_request:
            pub.send(order("status_request"))
            next_request = now + 1.0
        for index, frame in sourced(100):
            if STATUS in frame:
                note_status(frame)
                answered.add(index)
    say("ready")

    # 2. Start it: publish start until it says Running (or results come).
    results_before_window = 0
    aborted = False
    started: set[int] = set()
    next_start = 0.0
    start_sent = time.monotonic()
    while len(started) < args.turrets and not aborted:
        now = time.monotonic()
        if now - start_sent > args.start_timeout:
            say("result", ok=False, why="the turret never started", statuses=statuses)
            return 2
        if now >= next_start:
            pub.send(order("start", "open fire"))
            next_start = now + 1.0
        for index, frame in sourced(50):
            if STATUS in frame:
                note_status(frame)
                if b"Running" in frame:
                    started.add(index)
                elif b"Aborted" in frame or b"Killed" in frame:
                    aborted = True
            else:
                results_before_window += 1
                started.add(index)
    t0 = time.monotonic()
    say("running")

    # 3. Warm-up, then the window.
    window_start = t0 + args.warmup
    window_end = window_start + args.window
    in_window = False
    counts = [0] * args.turrets
    errors_of = [0] * args.turrets
    picked: list[tuple[float, float]] = []  # (elapsed, scriptrun_time)
    tagged_total = 0
    first_count = 0
    phase_end = window_start
    while not aborted:
        now = time.monotonic()
        if now >= phase_end:
            if not in_window:
                in_window = True
                window_start = now
                phase_end = window_end = now + args.window
                say("window_start")
                continue
            break
        if args.mode == "first" and args.expect and first_count >= args.expect:
            break
        for index, frame in sourced(20):
            if STATUS in frame:
                note_status(frame)
                if b"Aborted" in frame or b"Killed" in frame:
                    aborted = True
                continue
            if args.mode == "first" and quoted_tag in frame:
                if dump:
                    dump.write(frame + b"\n")
                data = json.loads(frame)
                picked.append((data["elapsed"], data["scriptrun_time"]))
                first_count += 1
            if not in_window:
                results_before_window += 1
                continue
            counts[index] += 1
            if EMPTY_ERRORS[0] not in frame and EMPTY_ERRORS[1] not in frame:
                errors_of[index] += 1
            if args.mode == "timers" and quoted_tag in frame:
                if dump:
                    dump.write(frame + b"\n")
                data = json.loads(frame)
                picked.append((data["elapsed"], data["scriptrun_time"]))
                tagged_total += 1
    ended = time.monotonic()
    if dump:
        dump.close()
    window = max(ended - window_start, 1e-9) if in_window else 0.0
    say("window_end")
    count, errors = sum(counts), sum(errors_of)
    each = [
        {"results": n, "errors": e, "rate": n / window if window else 0.0,
         "error_rate": e / window if window else 0.0}
        for n, e in zip(counts, errors_of)
    ]

    # 4. Stop and kill, as the HQ does at the end of a run.
    pub.send(order("stop", "premature stop"))
    time.sleep(0.5)
    if not args.no_kill:
        pub.send(order("kill", "bench over"))
    late = 0
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        for frame in frames(50):
            if STATUS in frame:
                note_status(frame)
            else:
                late += 1
    say(
        "result",
        ok=not aborted and in_window,
        aborted=aborted,
        mode=args.mode,
        window=window,
        results=count,
        errors=errors,
        rate=count / window if window else 0.0,
        error_rate=errors / window if window else 0.0,
        results_before_window=results_before_window,
        results_after_window=late,
        statuses=statuses[-20:],
        picked=picked,
        **({"turrets": each} if args.turrets > 1 else {}),
    )
    pub.close()
    for pull, _ in pulls:
        pull.close()
    context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
