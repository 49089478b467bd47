"""
The ``--report`` and ``--results`` options: their checks at start, and the
:class:`~octtwisted._stats.outputs.RunOutputs` they make (kept out of
``tap.py`` so that it only calls two functions).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs

from octtwisted._stats.outputs import OutputSettings, RunOutputs
from octtwisted._stats.results_file import results_format


def check_output_paths(report: str | None, results: str | None) -> str | None:
    """
    A one-line problem with the paths given, or None.
    """
    for option, value in (("--report", report), ("--results", results)):
        if value is None:
            continue
        path = Path(value)
        if not value or path.name in ("", ".", ".."):
            return f"{option} needs a file name, got {value!r}"
        if not path.absolute().parent.is_dir():
            return f"{option}: folder {str(path.absolute().parent)!r} does not exist"
        if path.is_dir():
            return f"{option}: {value!r} is a folder"
    if report is not None and Path(report).suffix.lower() not in (".html", ".htm"):
        return f"--report must name an .html file, got {report!r}"
    if results is not None and results_format(results) is None:
        return f"--results must end with .csv or .jsonl, got {results!r}"
    return None


def live_status_wanted(options: Any) -> bool:
    """
    A standalone run whose standard output is a terminal shows a live
    status line.
    """
    out = sys.__stdout__
    return bool(options["standalone"]) and out is not None and out.isatty()


def make_outputs(options: Any, reactor: Any, link: Any = None) -> RunOutputs | None:
    """
    The run outputs the options and config ask for, or None when there
    are none (no report, results, thresholds or live line).

    :param link: the HQ link, if any: a ``.jsonl`` results file copies the
        frames it sends.
    """
    from octtwisted._stats.live import LiveStatus

    config = options.turret_config
    live = live_status_wanted(options)
    report, results = options["report"], options["results"]
    if not (report or results or config.thresholds or live):
        return None
    standalone = bool(options["standalone"])
    status_line = None
    if live:
        assert sys.__stdout__ is not None
        status_line = LiveStatus(sys.__stdout__, options.standalone_duration, config.cannons)
        # The live line takes the place of the progress log lines.
        config = attrs.evolve(config, progress_interval=0.0)
    return RunOutputs(
        config=config,
        settings=OutputSettings(
            report=Path(report).absolute() if report else None,
            results=Path(results).absolute() if results else None,
            per_run_names=not standalone,
            duration=options.standalone_duration if standalone else None,
            mode="standalone" if standalone else "HQ",
        ),
        clock=reactor,
        turret_id=options["uuid"],
        status_line=status_line,
        frames=link,
    )
