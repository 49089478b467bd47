"""
Running the checks: five sessions, each a turret process of its own
against an HQ of its own (fresh ports), run in parallel threads.

- ``main``: announce, config, status requests, the storm, the context,
  start, the results, the rampup, stop, a second start, kill
  (:mod:`.main_session`).
- ``addressed``, ``two-frame``, ``garbage``, ``term``: orders addressed
  to the turret and to another, a two-frame order, junk orders, error
  results and SIGTERM (:mod:`.side_sessions`).

Then the checks over every frame of the run (the keys of each status,
no 'status' in results, every frame JSON), and the report.

A check whose session could not reach it (the turret died or never came
up) is skipped, with the reason; the check that met the problem fails.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from octtwisted.conformance.bounds import Bounds
from octtwisted.conformance.checks import FAIL, PASS, SKIP, Report
from octtwisted.conformance.launcher import TurretLauncher
from octtwisted.conformance.main_session import MainSession
from octtwisted.conformance.messages import STATUS_KEYS, short
from octtwisted.conformance.session import Run, Session
from octtwisted.conformance.side_sessions import (
    AddressedSession,
    GarbageSession,
    TermSession,
    TwoFrameSession,
)

SESSIONS: tuple[type[Session], ...] = (MainSession, AddressedSession, TwoFrameSession, GarbageSession, TermSession)


def _whole_run_checks(run: Run) -> None:
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
                   else f"{len(junk)} of {len(frames)} frames are not JSON objects, e.g. {short(junk[0].raw, 60)}")


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
    run = Run(launcher, Path(workdir), Path(script) if script else None,
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
